package io.streamsaga.inmemory.patterns;

import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** close() promises to stop the periodic sweep: a sweep finishing at that moment must not schedule the next. */
class ClaimCheckCloseDuringSweepTest {

    @Test
    void aSweepThatReschedulesItselfWhileTheInterceptorClosesLeavesNoSweepScheduled() {
        VirtualScheduler virtual = new VirtualScheduler();
        AtomicReference<ClaimCheckInterceptor> interceptor = new AtomicReference<>();
        AtomicInteger schedules = new AtomicInteger();
        // A scheduler the interceptor does not own; close() runs exactly between the sweep's check of
        // 'closed' and its call to schedule the next sweep (the interleaving of a concurrent close).
        Scheduler shared = new Scheduler() {
            @Override
            public Clock clock() {
                return virtual.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                if (schedules.incrementAndGet() == 2) {
                    interceptor.get().close();
                }
                return virtual.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) {
                virtual.sleep(delay);
            }

            @Override
            public void close() {
                virtual.close();
            }
        };
        try (InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build()) {
            interceptor.set(ClaimCheckInterceptor.builder(new InMemoryPayloadStore(), transport).scheduler(shared)
                    .expiry(Duration.ofDays(1)).sweepInterval(Duration.ofHours(1)).build());

            virtual.advance(Duration.ofHours(1)); // the first sweep runs and reschedules itself as close() runs

            assertEquals(2, schedules.get());
            assertEquals(0, virtual.pendingTasks(), "a sweep is still scheduled on the shared scheduler after close()");
        }
    }
}
