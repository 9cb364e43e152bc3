package io.streamsaga.inmemory.patterns;

import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.FileSystemPayloadStore;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/architecture.md, claim check: the interceptor's expiry sweep deletes in batches of 500, each a task of its own on
 * the scheduler it was given (a bus's, whose timers drive sagas' timeouts and retries), so that the timers due
 * meanwhile run between batches rather than after a sweep of the whole backlog; close() between two batches leaves
 * none queued.
 */
class ClaimCheckSweepBatchesTest {
    private static final Duration EVERY = Duration.ofHours(1);
    private static final Duration EXPIRY = Duration.ofDays(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final InMemoryPayloadStore store = new InMemoryPayloadStore();
    private ClaimCheckInterceptor claimCheck;

    @AfterEach
    void tearDown() {
        if (claimCheck != null) {
            claimCheck.close();
        }
        transport.close();
    }

    /** {@code count} payloads stored an expiry and more before the first sweep. */
    private void expired(int count) {
        expired(store, count);
    }

    private void expired(PayloadStore into, int count) {
        Instant at = scheduler.now().plus(EVERY).minus(EXPIRY).minusSeconds(1);
        for (int i = 0; i < count; i++) {
            into.put("payload-" + i, new byte[]{1}, "holder", at);
        }
    }

    private ClaimCheckInterceptor build() {
        return build(store);
    }

    private ClaimCheckInterceptor build(PayloadStore over) {
        return ClaimCheckInterceptor.builder(over, transport).scheduler(scheduler).expiry(EXPIRY).sweepInterval(EVERY)
                .build();
    }

    @Test
    void anExpirySweepYieldsTheSchedulersThreadBetweenBatchesSoATimerDueMeanwhileRunsBeforeItsNextBatch() {
        expired(1001); // three batches
        claimCheck = build();
        AtomicInteger leftWhenTheTimerRan = new AtomicInteger(-1);
        // Another timer of the same scheduler (a saga's step timeout, say), due with the sweep, armed after it
        scheduler.schedule(EVERY, () -> leftWhenTheTimerRan.set(store.size()));

        scheduler.advance(EVERY);

        assertEquals(501, leftWhenTheTimerRan.get(), "the timer ran after the sweep's first batch, not after all three");
        assertEquals(0, store.size(), "the sweep's run went on to its end");
        assertEquals(1, scheduler.pendingTasks(), "the next sweep, one interval after the last batch");
        assertEquals(scheduler.now().plus(EVERY), scheduler.nextDueAt().orElseThrow());
    }

    @Test
    void anInterceptorClosedBetweenTwoBatchesOfAnExpirySweepStartsNoFurtherBatchAndLeavesNothingScheduled() {
        expired(1001); // three batches
        claimCheck = build();
        AtomicInteger leftWhenClosed = new AtomicInteger(-1);
        // Due with the sweep, armed after it: runs between its first and second batches
        scheduler.schedule(EVERY, () -> {
            claimCheck.close();
            leftWhenClosed.set(store.size());
        });

        scheduler.advance(EVERY);

        assertEquals(501, leftWhenClosed.get(), "closed after the sweep's first batch");
        assertEquals(501, store.size(), "no batch after close()");
        assertEquals(0, scheduler.pendingTasks(), "neither the sweep's next batch nor a next sweep is left scheduled");
        scheduler.advance(Duration.ofDays(3));
        assertEquals(501, store.size(), "no sweep runs after close()");
    }

    @Test
    void anExpirySweepOverAFileSystemStoreYieldsTheSchedulersThreadBetweenBatchesToo(@TempDir Path dir) {
        FileSystemPayloadStore files = new FileSystemPayloadStore(dir);
        expired(files, 1001); // three batches
        claimCheck = build(files);
        AtomicLong leftWhenTheTimerRan = new AtomicLong(-1);
        // Another timer of the same scheduler, due with the sweep, armed after it
        scheduler.schedule(EVERY, () -> leftWhenTheTimerRan.set(payloadFiles(dir)));

        scheduler.advance(EVERY);

        assertEquals(501, leftWhenTheTimerRan.get(), "the timer ran after the sweep's first batch, not after all three");
        assertEquals(0, payloadFiles(dir), "the sweep's run went on to its end");
        assertEquals(1, scheduler.pendingTasks(), "the next sweep, one interval after the last batch");
    }

    private static long payloadFiles(Path dir) {
        try (Stream<Path> listed = Files.list(dir)) {
            return listed.filter(f -> f.getFileName().toString().endsWith(".payload")).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
