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
 * StepStatus.UNCERTAIN: a step one of whose attempts timed out (not interrupted) is compensated, also when a
 * later attempt fails for good or the saga is cancelled: also when that later attempt runs after a restart,
 * in a run recovered from the store (the stored history says the earlier attempt timed out; a store that
 * keeps no history cannot say).
 */
class TimedOutAttemptAfterRecoveryTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> undone = new CopyOnWriteArrayList<>();
    private final AtomicInteger attempts = new AtomicInteger();

    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("late-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").asyncAction((d, ctx) -> attempts.incrementAndGet() == 1 ? new CompletableFuture<Data>()
                        : CompletableFuture.failedFuture(new IllegalStateException("service unavailable")))
                .compensation((d, ctx) -> undone.add("book")) // tolerates "nothing to undo"
                .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMinutes(1))
                        .maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .timeout(Duration.ofSeconds(10))
                .build();
    }

    /** Attempt 1 of "book" times out (it still runs: it may take effect); then the process dies. */
    private SagaOrchestrator restartedAfterATimedOutAttempt() {
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition()).build();
        first.start(definition(), "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofSeconds(10));
        assertEquals(StepStatus.RETRY_SCHEDULED, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        first.close();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition()).build();
        second.recover();
        return second;
    }

    @Test
    void aRecoveredStepWhoseEarlierAttemptTimedOutIsCompensatedWhenItsLastAttemptFails() {
        SagaOrchestrator second = restartedAfterATimedOutAttempt();
        scheduler.advance(Duration.ofMinutes(1)); // attempt 2 fails for good

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(StepStatus.COMPENSATED, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        assertEquals(List.of("book", "reserve"), undone);
        second.close();
    }

    @Test
    void aRecoveredStepWhoseEarlierAttemptTimedOutIsCompensatedWhenTheSagaIsCancelled() {
        SagaOrchestrator second = restartedAfterATimedOutAttempt();
        second.cancel("saga-1");

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(StepStatus.COMPENSATED, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        assertEquals(List.of("book", "reserve"), undone);
        second.close();
    }
}
