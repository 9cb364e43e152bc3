package io.streamsaga.inmemory.patterns;

import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.OwnedSchedulerInterceptors;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.internal.SystemScheduler;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.internal.DefaultSagaOrchestrator;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyInt;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * A component that owns its {@link Scheduler#system()} (built without a scheduler) closed its scoped timers, waiting
 * {@link Scheduler#CLOSE_WAIT} for a timer task stuck longer than that, and then its scheduler, which waited
 * {@code CLOSE_WAIT} again for the same task before interrupting it: 20 s instead of the 10 s promised. The orchestrator's
 * two closes now share one deadline (once the scoped close has given up, the scheduler's interrupts the task without
 * waiting again), and the claim-check interceptor, whose own scheduler runs nothing else, schedules its sweeps on it
 * without a scope. Each component owns a {@link SystemScheduler} as its builder makes, with a short close wait (its
 * {@link Scheduler#closeWait()}, which the component's close takes as its own) rather than 10 s: what is proved is
 * that no second wait follows the first, whatever its length.
 */
class OwnedSchedulerCloseWaitsOnceTest {
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch interrupted = new CountDownLatch(1);
    /** The first close() that gave up waiting logged so. */
    private final CountDownLatch gaveUp = new CountDownLatch(1);
    private PrintStream originalErr;

    @BeforeEach
    void captureTheLog() {
        originalErr = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(new OutputStream() {
            @Override
            public synchronized void write(int b) {
                captured.write(b);
                originalErr.write(b);
                if (b == '\n' && captured.toString(StandardCharsets.UTF_8).contains("close() stopped waiting")) {
                    gaveUp.countDown();
                }
            }
        }, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restoreTheLog() {
        System.setErr(originalErr);
    }

    /** Timer work stuck until interrupted. */
    private int stuckWork() {
        entered.countDown();
        try {
            new CountDownLatch(1).await();
        } catch (InterruptedException e) {
            interrupted.countDown();
        }
        return 0;
    }

    /**
     * Closes on another thread while the work is stuck; once a close has given up waiting (the scoped one's, or the
     * scheduler's when the component needs no scope), the closer must interrupt the work without a second timed wait.
     */
    private void closeWhileTheWorkIsStuck(Runnable close) throws InterruptedException {
        entered.await();
        Thread closer = new Thread(close, "closer");
        closer.start();
        gaveUp.await();
        while (interrupted.getCount() > 0) {
            assertNotEquals(Thread.State.TIMED_WAITING, closer.getState(),
                    "close() waited again for the task its scoped close had given up on");
            Thread.onSpinWait();
        }
        closer.join();
    }

    /** The scheduler a component built without one owns, as its builder makes it, but with a short close wait. */
    private static SystemScheduler ownScheduler() {
        return new SystemScheduler(Clock.systemUTC(), Duration.ofMillis(200));
    }

    @Test
    void theClaimCheckCloseWaitsOnceForASweepStuckLongerThanTheCloseWait() throws Exception {
        PayloadStore store = mock(PayloadStore.class, delegatesTo(new InMemoryPayloadStore()));
        doAnswer(call -> stuckWork()).when(store).deleteStoredBefore(any(Instant.class), anyInt());
        try (InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build()) {
            // as ClaimCheckInterceptor.builder(store, transport).sweepInterval(1 ms).build(), which owns its scheduler
            ClaimCheckInterceptor claimCheck = OwnedSchedulerInterceptors.owning(ownScheduler(), store, transport,
                    Duration.ofMillis(1));

            closeWhileTheWorkIsStuck(claimCheck::close);
        }
    }

    @Test
    void aSagaOrchestratorsCloseWaitsOnceForAPurgeStuckLongerThanTheCloseWait() throws Exception {
        InMemorySagaStore store = mock(InMemorySagaStore.class, delegatesTo(new InMemorySagaStore()));
        doAnswer(call -> stuckWork()).when(store).deleteFinishedBefore(any(Instant.class), anyInt());
        // as SagaOrchestrator.builder().store(store).purgeEvery(1 ms).build(), which, given no scheduler nor bus, owns
        // its scheduler
        SystemScheduler own = ownScheduler();
        SagaOrchestrator orchestrator = new DefaultSagaOrchestrator(new SagaOrchestrator.Config(store, null, own,
                MetricsRecorder.NOOP, List.of(), List.of(), List.of(), Map.of(), JsonEventCodec.defaultMapper(),
                "saga-replies", "saga-orchestrator", null, Duration.ofDays(7), Duration.ofMillis(1), null, null, null),
                own);

        closeWhileTheWorkIsStuck(orchestrator::close);
    }
}
