package io.streamsaga.bus;

import io.streamsaga.message.Message;
import io.streamsaga.retry.LockCheckingRandom;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The bus draws the jitter of a handler's retry backoff from the random source it was built with
 * ({@link EventBus.Builder#retryJitter}), so a seeded one repeats the delays from run to run.
 */
class BusRetryJitterTest {
    /** Records the delays the bus sleeps between a handler's attempts, without sleeping. */
    private static final class SleepRecorder implements Scheduler {
        final List<Duration> slept = new ArrayList<>();

        @Override
        public Clock clock() {
            return Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC);
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return () -> { };
        }

        @Override
        public void sleep(Duration delay) {
            slept.add(delay);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void theDelaysBetweenAHandlersAttemptsAreDrawnFromTheBusesRetryJitter() throws Exception {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(4).initialBackoff(Duration.ofSeconds(10)).jitter(1.0)
                .build();
        RecordingTransport transport = new RecordingTransport();
        SleepRecorder scheduler = new SleepRecorder();
        try (EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(policy)
                .retryJitter(new Random(42)).build()) {
            bus.subscribe("billing", "orders", Message.class, (event, ctx) -> {
                throw new IllegalStateException("the ledger is locked");
            });
            transport.deliver(Message.builder("orders").key("o-1").type("order-created").payload("o-1").build());
        }

        Random same = new Random(42);
        assertEquals(List.of(policy.delayBefore(2, same), policy.delayBefore(3, same), policy.delayBefore(4, same)),
                scheduler.slept);
    }

    @Test
    void aJitterSourceThatIsNotThreadSafeIsDrawnFromOnlyUnderItsLock() throws Exception {
        LockCheckingRandom jitter = new LockCheckingRandom();
        RecordingTransport transport = new RecordingTransport();
        try (EventBus bus = EventBus.builder(transport).scheduler(new SleepRecorder())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).jitter(0.5).build()).retryJitter(jitter).build()) {
            bus.subscribe("billing", "orders", Message.class, (event, ctx) -> {
                throw new IllegalStateException("the ledger is locked");
            });
            transport.deliver(Message.builder("orders").key("o-1").type("order-created").payload("o-1").build());
        }

        assertEquals(2, jitter.draws()); // one before each retry
        assertEquals(0, jitter.drawsWithoutTheLock()); // so subscriptions on several threads never draw at once
    }
}
