package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * markResolved() and cancel() return nothing: when another orchestrator wrote the saga between the call's read and
 * its write, the call's write is refused (optimistic concurrency) and nothing of it is stored, which the caller
 * must learn from the call itself, as retryCompensation()'s caller learns it from its stage.
 */
class OperatorCallThatLosesARaceTest {
    record Data(String id) {
    }

    /** Runs {@code meanwhile} once, just before the first write of a transition of type {@code type}. */
    private static final class InterleavingStore extends ForwardingSagaStore {
        final AtomicReference<Runnable> meanwhile = new AtomicReference<>();
        private final TransitionType type;

        InterleavingStore(TransitionType type) {
            super(new InMemorySagaStore());
            this.type = type;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            Runnable other = transition.type() == type ? meanwhile.getAndSet(null) : null;
            if (other != null) {
                other.run();
            }
            delegate.update(updated, transition);
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();

    @Test
    void markResolvedThatLosesTheSagaToAnotherOrchestratorThrowsInsteadOfReturningAsIfResolved() {
        InterleavingStore store = new InterleavingStore(TransitionType.SAGA_RESOLVED);
        SagaDefinition<Data> definition = SagaDefinition.builder("race-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    throw new IllegalStateException("down");
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        first.close();
        SagaOrchestrator mine = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        SagaOrchestrator other = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        // Another operator skips the failed compensation meanwhile: the saga goes on compensating, and completes.
        store.meanwhile.set(() -> other.skipCompensation("saga-1", "reserve").toCompletableFuture().join());

        assertThrows(ConcurrentSagaUpdateException.class, () -> mine.markResolved("saga-1"));

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        mine.close();
        other.close();
    }

    @Test
    void cancelThatLosesTheSagaToAnotherOrchestratorThrowsInsteadOfReturningAsIfCancelled() {
        InterleavingStore store = new InterleavingStore(TransitionType.SAGA_COMPENSATING);
        SagaDefinition<Data> definition = SagaDefinition.builder("race-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // still running at the close
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        first.close();
        SagaOrchestrator mine = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        SagaOrchestrator other = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        // Another orchestrator resumes the saga meanwhile and drives it (its write comes first).
        store.meanwhile.set(other::recover);

        assertThrows(ConcurrentSagaUpdateException.class, () -> mine.cancel("saga-1"));

        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status(), "not cancelled");
        mine.close();
        other.close();
    }
}
