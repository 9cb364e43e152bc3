package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * On a real scheduler a timer's cancel can race with its firing: the scheduler thread has taken the task and
 * waits for the run's lock while the run cancels it, so the task runs anyway. Such a stale timer must change
 * nothing: the step's timer slot keeps the timer armed since (a retry's), so that the run neither arms a second
 * retry timer nor loses the handle it needs to cancel its current timer.
 */
class LateTimerCancellationTest {
    private static final Duration TIMEOUT = Duration.ofMinutes(1);
    private static final Duration BACKOFF = Duration.ofHours(1);

    record Data(String id) {
    }

    /**
     * A scheduler whose cancels all lose the race with the firing: a cancelled task still runs when due, as one
     * already taken by the scheduler's thread does. Counts the timers armed and neither run nor cancelled.
     */
    static final class LateCancellingScheduler implements Scheduler {
        final VirtualScheduler delegate = new VirtualScheduler();
        private final List<Timer> live = new ArrayList<>();

        private final class Timer {
            boolean done;
        }

        @Override
        public Clock clock() {
            return delegate.clock();
        }

        @Override
        public synchronized Cancellable schedule(Duration delay, Runnable task) {
            Timer timer = new Timer();
            live.add(timer);
            delegate.schedule(delay, () -> {
                end(timer);
                task.run();
            });
            return () -> end(timer);
        }

        private synchronized void end(Timer timer) {
            timer.done = true;
            live.remove(timer);
        }

        synchronized int liveTimers() {
            return live.size();
        }

        @Override
        public void sleep(Duration delay) {
            delegate.sleep(delay);
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    @Test
    void aCancelledTimeoutThatFiresAnywayLeavesTheRetryTimerArmedSinceAloneAndCancellable() {
        LateCancellingScheduler scheduler = new LateCancellingScheduler();
        List<CompletableFuture<Data>> hotelAttempts = new ArrayList<>();
        CompletableFuture<Data> flight = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("trip", Data.class)
                .parallel(group -> {
                    group.step("hotel").asyncAction((d, ctx) -> {
                        CompletableFuture<Data> attempt = new CompletableFuture<>();
                        hotelAttempts.add(attempt);
                        return attempt;
                    }).timeout(TIMEOUT).retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(BACKOFF)
                            .maxBackoff(BACKOFF).jitter(0).build());
                    group.step("flight").asyncAction((d, ctx) -> flight);
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Data("t"));
            assertEquals(1, scheduler.liveTimers(), "the hotel's timeout");

            hotelAttempts.get(0).completeExceptionally(new IllegalStateException("hotel busy"));
            assertEquals(1, scheduler.liveTimers(), "the hotel's retry, its timeout cancelled");

            scheduler.delegate.advance(TIMEOUT); // the cancelled timeout fires anyway
            flight.complete(new Data("t")); // drives the run while the hotel waits for its retry

            assertEquals(1, scheduler.liveTimers(), "a second retry timer was armed for the hotel");

            scheduler.delegate.advance(BACKOFF.minus(TIMEOUT)); // the retry: attempt 2 starts, its timeout armed
            assertEquals(2, hotelAttempts.size());
            hotelAttempts.get(1).complete(new Data("t"));

            assertEquals(SagaStatus.COMPLETED, orchestrator.find("trip-1").orElseThrow().status());
            assertEquals(0, scheduler.liveTimers(), "a timer of the completed saga was left armed");
        }
    }
    @Test
    void aCancelledRetryTimerThatFiresAnywayLeavesTheCompensationTimeoutArmedSinceCancellable() {
        LateCancellingScheduler scheduler = new LateCancellingScheduler();
        List<CompletableFuture<Void>> undos = new ArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("trip", Data.class)
                .step("hotel").asyncAction((d, ctx) -> new CompletableFuture<>()) // never completes: times out
                .timeout(TIMEOUT).retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(BACKOFF)
                        .maxBackoff(BACKOFF).jitter(0).build())
                .asyncCompensation((d, ctx) -> {
                    CompletableFuture<Void> undo = new CompletableFuture<>();
                    undos.add(undo);
                    return undo;
                }).compensationTimeout(BACKOFF.multipliedBy(2))
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Data("t"));
            scheduler.delegate.advance(TIMEOUT); // attempt 1 times out (it may have taken effect): retry in an hour

            orchestrator.cancel("trip-1"); // the retry is cancelled, the hotel compensated under its timeout
            assertEquals(1, undos.size());
            assertEquals(1, scheduler.liveTimers(), "the compensation's timeout");

            scheduler.delegate.advance(BACKOFF); // the cancelled retry fires anyway
            undos.get(0).complete(null);

            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("trip-1").orElseThrow().status());
            assertEquals(0, scheduler.liveTimers(), "a timer of the compensated saga was left armed");
        }
    }
}
