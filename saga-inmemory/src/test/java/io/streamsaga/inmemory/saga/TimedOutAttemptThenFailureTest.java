package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A step one of whose attempts timed out is uncertain (StepStatus.UNCERTAIN: "it timed out ... compensated
 * like a succeeded step"), also when a later attempt fails for good: the timed-out one was not interrupted.
 */
class TimedOutAttemptThenFailureTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> undone = new CopyOnWriteArrayList<>();
    private final AtomicInteger attempts = new AtomicInteger();
    private final CompletableFuture<Data> firstAttempt = new CompletableFuture<>();

    @Test
    void anAsyncStepWhoseFirstAttemptTimedOutAndWhoseLastAttemptFailedIsCompensated() {
        SagaDefinition<Data> definition = SagaDefinition.builder("late-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").asyncAction((d, ctx) -> attempts.incrementAndGet() == 1 ? firstAttempt
                        : CompletableFuture.failedFuture(new IllegalStateException("service unavailable")))
                .compensation((d, ctx) -> undone.add("book")) // tolerates "nothing to undo"
                .retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .timeout(Duration.ofSeconds(10))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofSeconds(10)); // attempt 1 times out (still running); attempt 2 fails for good
        firstAttempt.complete(new Data("booked")); // attempt 1 took effect after all (its result is ignored)

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(StepStatus.COMPENSATED, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        assertEquals(List.of("book", "reserve"), undone);
        orchestrator.close();
    }

    @Test
    void anAsyncStepWithATimeoutWhoseAttemptsAllFailedIsNotCompensated() {
        SagaDefinition<Data> definition = SagaDefinition.builder("failing-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").asyncAction((d, ctx) -> CompletableFuture.<Data>failedFuture(new IllegalStateException("no")))
                .compensation((d, ctx) -> undone.add("book"))
                .retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .timeout(Duration.ofSeconds(10))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofSeconds(10));

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(StepStatus.FAILED, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        assertEquals(List.of("reserve"), undone);
        orchestrator.close();
    }
}
