package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SagaResult.failure(): "the failure that made the saga compensate, or null". A saga whose stuck retriable
 * step an operator retried, and which then completed, did not compensate.
 */
class RetriedRetriableStepTest {
    record Data(String id) {
    }

    @Test
    void aSagaCompletedAfterAnOperatorRetriedItsRetriableStepCarriesNoFailure() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        AtomicInteger attempts = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("stuck-saga", Data.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    if (attempts.incrementAndGet() == 1) {
                        throw new IllegalStateException("carrier down");
                    }
                    return d;
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        SagaResult<Object> result = orchestrator.retryCompensation("saga-1").toCompletableFuture().getNow(null);

        assertTrue(result != null && result.isCompleted(), String.valueOf(result));
        assertNull(result.failure(), "a completed saga reports the failure it recovered from");
        assertNull(store.find("saga-1").orElseThrow().failure());
        orchestrator.close();
    }
}
