package io.streamsaga.claimcheck;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

/**
 * An interceptor built without a scheduler owns it and schedules its sweeps on it directly (no scope): a sweep that
 * passed the {@code closed} check just before close() shut that scheduler down had its reschedule refused, and the
 * RejectedExecutionException went out of the sweep to the scheduler, which logged it at ERROR as a bug in a timer. The
 * refusal of a closed interceptor's reschedule is now ignored.
 */
class ClaimCheckOwnSchedulerCloseDuringSweepTest {

    @Test
    void aSweepWhoseRescheduleTheOwnSchedulerRefusesAfterCloseEndsQuietly() {
        AtomicReference<ClaimCheckInterceptor> interceptor = new AtomicReference<>();
        List<Runnable> scheduled = new CopyOnWriteArrayList<>();
        Clock clock = Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC);
        // The scheduler the interceptor owns, as Scheduler.system(): it refuses a task once closed. close() runs
        // exactly between the sweep's check of 'closed' and its call to schedule the next sweep.
        Scheduler owned = new Scheduler() {
            private boolean closed;

            @Override
            public Clock clock() {
                return clock;
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                if (scheduled.size() == 1) {
                    interceptor.get().close();
                }
                if (closed) {
                    throw new RejectedExecutionException("the scheduler is closed");
                }
                scheduled.add(task);
                return () -> { };
            }

            @Override
            public void sleep(Duration delay) {
            }

            @Override
            public void close() {
                closed = true;
            }
        };
        Transport transport = mock(Transport.class);
        when(transport.retentionHorizon()).thenReturn(Optional.empty());
        PayloadStore store = mock(PayloadStore.class);
        interceptor.set(new ClaimCheckInterceptor(new ClaimCheckInterceptor.Config(store, transport, owned,
                MetricsRecorder.NOOP, 1024, Duration.ofDays(1), Duration.ofHours(1), false, false), true));
        assertEquals(1, scheduled.size(), "the first sweep is scheduled");

        assertDoesNotThrow(() -> scheduled.get(0).run(), "the sweep let the closed scheduler's refusal out");
        assertEquals(1, scheduled.size());
    }
}
