package io.streamsaga.inmemory.patterns;

import io.streamsaga.CapturedLog;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/architecture.md, "A periodic task whose thread is stopped": the claim-check interceptor's expiry sweep follows
 * the rule of the library's other periodic tasks: a run that meets a {@link ThreadDeath} throws it on, says so at WARN
 * and is the last; a test's SimulatedProcessCrash ends it too, not thrown; any other failure of a run, an Error too,
 * is followed by the next run.
 */
class ClaimCheckSweepFailureTest {
    private static final Duration EVERY = Duration.ofHours(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private ClaimCheckInterceptor claimCheck;

    /** An in-memory store whose expiry a test overrides. */
    private abstract static class InMemoryDelegate implements PayloadStore {
        final InMemoryPayloadStore delegate = new InMemoryPayloadStore();

        @Override
        public void put(String id, byte[] content, String holder, Instant now) {
            delegate.put(id, content, holder, now);
        }

        @Override
        public Optional<byte[]> get(String id) {
            return delegate.get(id);
        }

        @Override
        public boolean release(String id, String holder) {
            return delegate.release(id, holder);
        }
    }

    /** An in-memory store whose first sweep ({@link #deleteStoredBefore}) throws what it is given; sweeps counted. */
    private static final class FailingOnceStore extends InMemoryDelegate {
        private final Supplier<Error> first;
        private final AtomicInteger sweeps = new AtomicInteger();

        FailingOnceStore(Supplier<Error> first) {
            this.first = first;
        }

        @Override
        public int deleteStoredBefore(Instant cutoff) {
            if (sweeps.getAndIncrement() == 0) {
                throw first.get();
            }
            return delegate.deleteStoredBefore(cutoff);
        }
    }

    private FailingOnceStore build(Supplier<Error> first) {
        FailingOnceStore store = new FailingOnceStore(first);
        claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).expiry(Duration.ofDays(1))
                .sweepInterval(EVERY).build();
        return store;
    }

    @AfterEach
    void tearDown() {
        if (claimCheck != null) {
            claimCheck.close();
        }
        transport.close();
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void anExpirySweepWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        FailingOnceStore store = build(ThreadDeath::new);

        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(EVERY),
                "thrown on, as ThreadDeath's Javadoc asks"));
        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - claim-check interceptor: its"
                + " expiry sweep stops for good, its thread stopped (java.lang.ThreadDeath)"), log);
        scheduler.advance(EVERY.multipliedBy(10));

        assertEquals(1, store.sweeps.get(), "no sweep ran after it");
        assertEquals(0, claimCheck.purgeExpired(), "the interceptor's own calls go on");
    }

    @Test
    void anExpirySweepMeetingATestsSimulatedProcessCrashIsTheLastAndDoesNotThrowItIntoWhatAdvancedTheClock()
            throws Throwable {
        FailingOnceStore store = build(() -> new SimulatedCrash("the process dies here (test)"));

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(EVERY.multipliedBy(10)));

        assertEquals("", log, "a crash the test asked for is no warning nor error");
        assertEquals(1, store.sweeps.get(), "a dead process sweeps no more");
        assertEquals(0, scheduler.pendingTasks(), "no sweep left scheduled");
    }

    @Test
    void anExpirySweepThatThrowsAnErrorOtherThanAThreadDeathIsFollowedByTheNextOne() {
        AssertionError bug = new AssertionError("a bug in the payload store (test)");
        FailingOnceStore store = build(() -> bug);

        assertSame(bug, assertThrows(AssertionError.class, () -> scheduler.advance(EVERY)), "thrown on to the scheduler");
        scheduler.advance(EVERY.multipliedBy(2));

        assertEquals(3, store.sweeps.get(), "the next sweeps ran");
    }

    @Test
    void anExpirySweepFailingAfterABatchSaysHowManyPayloadsItsRunHadDeleted() throws Throwable {
        AtomicInteger batches = new AtomicInteger();
        InMemoryDelegate failingAtItsSecondBatch = new InMemoryDelegate() {
            @Override
            public int deleteStoredBefore(Instant cutoff) {
                return delegate.deleteStoredBefore(cutoff);
            }

            @Override
            public int deleteStoredBefore(Instant cutoff, int maxPayloads) {
                if (batches.incrementAndGet() == 2) {
                    throw new IllegalStateException("the store's disk is full (test)");
                }
                return delegate.deleteStoredBefore(cutoff, maxPayloads);
            }
        };
        Instant old = scheduler.now().minus(Duration.ofDays(2));
        for (int i = 0; i < 600; i++) {
            failingAtItsSecondBatch.put("payload-" + i, new byte[]{1}, "holder", old);
        }
        claimCheck = ClaimCheckInterceptor.builder(failingAtItsSecondBatch, transport).scheduler(scheduler)
                .expiry(Duration.ofDays(1)).sweepInterval(EVERY).build();

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(EVERY));

        assertTrue(log.contains("WARN io.streamsaga.claimcheck.ClaimCheckInterceptor - claim-check expiry sweep failed"
                + " after 500 expired payload(s) deleted, retrying at the next interval: java.lang.IllegalStateException:"
                + " the store's disk is full (test)"), log);
        assertEquals(100, failingAtItsSecondBatch.delegate.size(), "the run ended at the failure");
    }
}
