package io.streamsaga.bus;

import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * A bus built without a scheduler creates a {@link Scheduler#system()} (for its backoff, and for the components built
 * on it that schedule through {@link EventBus#scheduler()}: an aggregator's deadlines, a flow tracker's checks); its
 * close() left that scheduler's thread running, one leaked thread per bus. The bus now closes the scheduler it created,
 * and only that one.
 */
class BusSchedulerOwnershipTest {

    @Test
    void closingABusBuiltWithoutASchedulerEndsTheThreadOfTheSchedulerItCreated() throws Exception {
        EventBus bus = EventBus.builder(new RecordingTransport()).build();
        CompletableFuture<Thread> worker = new CompletableFuture<>();
        bus.scheduler().schedule(Duration.ZERO, () -> worker.complete(Thread.currentThread()));
        Thread thread = worker.get(30, TimeUnit.SECONDS);

        bus.close();

        thread.join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(thread.isAlive(), "the bus's own scheduler thread ended with the bus");
    }

    @Test
    void closingABusLeavesTheSchedulerItWasGivenRunning() throws Exception {
        AtomicBoolean closed = new AtomicBoolean();
        Scheduler given = new Scheduler() {
            @Override
            public Clock clock() {
                return Clock.systemUTC();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                return () -> { };
            }

            @Override
            public void sleep(Duration delay) {
            }

            @Override
            public void close() {
                closed.set(true);
            }
        };
        EventBus bus = EventBus.builder(new RecordingTransport()).scheduler(given).build();

        bus.close();

        assertFalse(closed.get(), "the application's scheduler is the application's to close");
        assertSame(given, bus.scheduler());
    }
}
