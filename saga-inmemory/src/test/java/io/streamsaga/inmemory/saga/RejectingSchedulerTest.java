package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.RejectedExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A scheduler that refuses a timer (closed, say, or saturated): the engine cannot arm the step's timeout, so
 * the run stops as after a failure of its store (its result fails, the saga resumes on recover()), instead of
 * throwing out of the call that drove it and leaving the run registered, its step's outcome never recorded.
 */
class RejectingSchedulerTest {
    private static final Duration TIMEOUT = Duration.ofMinutes(1);

    record Data(String id) {
    }

    /** A {@link VirtualScheduler} that rejects every task while {@link #rejecting} is set. */
    static final class RejectingScheduler implements Scheduler {
        final VirtualScheduler delegate = new VirtualScheduler();
        volatile boolean rejecting;

        @Override
        public Clock clock() {
            return delegate.clock();
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            if (rejecting) {
                throw new RejectedExecutionException("scheduler closed");
            }
            return delegate.schedule(delay, task);
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

    private static SagaDefinition<Data> definition(List<CompletableFuture<Data>> attempts) {
        return SagaDefinition.builder("trip", Data.class)
                .step("flight").asyncAction((d, ctx) -> {
                    CompletableFuture<Data> attempt = new CompletableFuture<>();
                    attempts.add(attempt);
                    return attempt;
                })
                .step("hotel").asyncAction((d, ctx) -> {
                    CompletableFuture<Data> attempt = new CompletableFuture<>();
                    attempts.add(attempt);
                    return attempt;
                }).timeout(TIMEOUT)
                .build();
    }

    @Test
    void aTimeoutTheSchedulerRejectsWhenTheSagaStartsFailsItsResultAndTheSagaResumesOnRecover() {
        RejectingScheduler scheduler = new RejectingScheduler();
        List<CompletableFuture<Data>> attempts = new ArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("trip", Data.class)
                .step("hotel").asyncAction((d, ctx) -> {
                    CompletableFuture<Data> attempt = new CompletableFuture<>();
                    attempts.add(attempt);
                    return attempt;
                }).timeout(TIMEOUT)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).build()) {
            scheduler.rejecting = true;

            CompletionStage<SagaResult<Data>> result = orchestrator.start(definition, "trip-1", null, new Data("t"));

            SagaException stopped = assertInstanceOf(SagaException.class, assertThrows(CompletionException.class,
                    result.toCompletableFuture()::join).getCause());
            assertInstanceOf(RejectedExecutionException.class, stopped.getCause());
            assertEquals(SagaStatus.RUNNING, orchestrator.find("trip-1").orElseThrow().status());

            scheduler.rejecting = false;
            assertEquals(List.of("trip-1"), orchestrator.recover().resumed(), "the stopped run is not resumed");
            assertEquals(2, attempts.size(), "the attempt whose outcome the run could not wait for runs again");
            attempts.get(1).complete(new Data("t"));
            assertEquals(SagaStatus.COMPLETED, orchestrator.find("trip-1").orElseThrow().status());
        }
    }

    @Test
    void aCompensationTimeoutTheSchedulerRejectsFailsTheResultAndTheCompensationRunsAgainOnRecover() {
        RejectingScheduler scheduler = new RejectingScheduler();
        List<CompletableFuture<Void>> undos = new ArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("trip", Data.class)
                .step("hotel").action((d, ctx) -> d)
                .asyncCompensation((d, ctx) -> {
                    CompletableFuture<Void> undo = new CompletableFuture<>();
                    undos.add(undo);
                    return undo;
                }).compensationTimeout(TIMEOUT)
                .step("flight").action((d, ctx) -> {
                    throw new IllegalStateException("no seats");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).build()) {
            scheduler.rejecting = true;

            CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "trip-1", null, new Data("t"))
                    .toCompletableFuture();

            assertTrue(result.isCompletedExceptionally(), "the run neither waits for the compensation nor reports that it stopped");
            assertEquals(SagaStatus.COMPENSATING, orchestrator.find("trip-1").orElseThrow().status());
            scheduler.rejecting = false;
            assertEquals(List.of("trip-1"), orchestrator.recover().resumed(), "the stopped run is not resumed");
            assertEquals(2, undos.size(), "the compensation whose outcome the run could not wait for runs again");
            undos.get(1).complete(null);
            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("trip-1").orElseThrow().status());
        }
    }

    @Test
    void aTimeoutTheSchedulerRejectsAfterAnAsyncCompletionFailsTheResultInsteadOfLeavingTheSagaHanging() {
        RejectingScheduler scheduler = new RejectingScheduler();
        List<CompletableFuture<Data>> attempts = new ArrayList<>();
        SagaDefinition<Data> definition = definition(attempts);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).build()) {
            CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "trip-1", null, new Data("t"))
                    .toCompletableFuture();
            scheduler.rejecting = true;

            attempts.get(0).complete(new Data("t")); // the flight: the hotel starts, its timeout is rejected

            assertTrue(result.isCompletedExceptionally(), "the run neither waits for the hotel nor reports that it stopped");
            scheduler.rejecting = false;
            assertEquals(List.of("trip-1"), orchestrator.recover().resumed(), "the stopped run is not resumed");
            attempts.get(attempts.size() - 1).complete(new Data("t"));
            assertEquals(SagaStatus.COMPLETED, orchestrator.find("trip-1").orElseThrow().status());
        }
    }
}
