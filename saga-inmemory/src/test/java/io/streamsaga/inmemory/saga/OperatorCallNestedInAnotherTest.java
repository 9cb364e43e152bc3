package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator call made from a listener while another operator call on the same saga drives it (a retry whose
 * compensation fails again, heard in onFailed, retried from there) has per-call state of its own: the store's refusal
 * of the inner call's write fails the inner call's stage and puts the run back, and the outer call's stage completes
 * with the saga's outcome, as if the inner call had not been made.
 */
class OperatorCallNestedInAnotherTest {
    record Data(String id) {
    }

    /** Refuses the second SAGA_RETRIED write: the retry made from inside the first one. */
    static final class RefusingTheSecondRetryStore extends ForwardingSagaStore {
        final SagaWriteRefusedException refusal = new SagaWriteRefusedException("outbox row already there", null);
        final AtomicInteger retries = new AtomicInteger();

        RefusingTheSecondRetryStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.SAGA_RETRIED && retries.incrementAndGet() == 2) {
                throw refusal;
            }
            super.update(updated, transition);
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();

    @AfterEach
    void close() {
        scheduler.close();
    }

    @Test
    void aRetryFromOnFailedInsideAnotherRetryWhoseWriteIsRefusedFailsOnlyItsOwnStage() {
        RefusingTheSecondRetryStore store = new RefusingTheSecondRetryStore();
        AtomicInteger failures = new AtomicInteger();
        AtomicReference<SagaOrchestrator> orchestratorRef = new AtomicReference<>();
        AtomicReference<CompletableFuture<SagaResult<Object>>> inner = new AtomicReference<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    throw new IllegalStateException("warehouse down");
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition).listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        if (failures.incrementAndGet() == 2) { // during the outer retry
                            inner.set(orchestratorRef.get().retryCompensation("saga-1").toCompletableFuture());
                        }
                    }
                }).build()) {
            orchestratorRef.set(orchestrator);
            SagaResult<Data> first = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture()
                    .join();
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, first.outcome());

            CompletableFuture<SagaResult<Object>> outer = orchestrator.retryCompensation("saga-1").toCompletableFuture();

            CompletionException refused = assertThrows(CompletionException.class, () -> inner.get().join());
            assertSame(store.refusal, refused.getCause());
            assertTrue(outer.isDone(), "the outer retry's stage never completes");
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, outer.join().outcome());
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
            // The run, put back, still takes operator calls: a third retry is written.
            orchestrator.retryCompensation("saga-1");
            assertEquals(3, store.retries.get());
        }
    }
}
