package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * SagaOrchestrator.retryCompensation: "retries the failed compensations (or stuck retriable step)": also a
 * retriable step whose last attempt timed out (its status is then UNCERTAIN, not FAILED).
 */
class RetryOfATimedOutRetriableStepTest {
    record Data(String id) {
    }

    @Test
    void anOperatorRetryRunsAStuckRetriableStepWhoseLastAttemptTimedOut() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        AtomicInteger attempts = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("stuck-saga", Data.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").asyncAction((d, ctx) -> attempts.incrementAndGet() == 1
                        ? new CompletableFuture<Data>() : CompletableFuture.completedFuture(d))
                .retry(RetryPolicy.NONE).timeout(Duration.ofSeconds(10))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofSeconds(10));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        orchestrator.retryCompensation("saga-1");
        scheduler.advance(Duration.ofSeconds(1));

        assertEquals(2, attempts.get(), "the operator's retry did not run the step again");
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }
}
