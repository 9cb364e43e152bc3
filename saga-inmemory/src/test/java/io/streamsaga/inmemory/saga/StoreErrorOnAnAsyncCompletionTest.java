package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An Error from the store while the outcome of an asynchronous action is stored (an observed run writes it
 * when the stage completes, outside drive()) must stop the run as any Error does (SagaOrchestrator: the saga
 * stops as if the process died, recover() resumes it, result() says so), not leave it registered and never
 * driven: the stage's dependent swallows the Error, so nothing else would ever hear of it.
 */
class StoreErrorOnAnAsyncCompletionTest {
    record Data(String id) {
    }

    /** Throws an Error, once, instead of writing a transition of type {@code failing}. */
    private static final class ErrorOnStepSucceededStore extends ForwardingSagaStore {
        private final AtomicBoolean failed = new AtomicBoolean();
        private final TransitionType failing;

        ErrorOnStepSucceededStore(TransitionType failing) {
            super(new InMemorySagaStore());
            this.failing = failing;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == failing && failed.compareAndSet(false, true)) {
                throw new Error("the store's driver died");
            }
            delegate.update(updated, transition);
        }
    }

    @Test
    void anErrorStoringAnAsyncOutcomeStopsTheRunAndRecoverResumesIt() {
        ErrorOnStepSucceededStore store = new ErrorOnStepSucceededStore(TransitionType.STEP_SUCCEEDED);
        CompletableFuture<Data> pending = new CompletableFuture<>();
        AtomicInteger calls = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("async-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> calls.incrementAndGet() == 1
                        ? pending : CompletableFuture.completedFuture(new Data("again")))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));

        pending.complete(new Data("reserved")); // the store throws its Error on this thread

        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }

    @Test
    void anErrorStoringAnOperatorsCancelStopsTheRunAndRecoverResumesIt() {
        ErrorOnStepSucceededStore store = new ErrorOnStepSucceededStore(TransitionType.SAGA_COMPENSATING);
        CompletableFuture<Data> pending = new CompletableFuture<>();
        List<String> undone = new java.util.concurrent.CopyOnWriteArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("async-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").asyncAction((d, ctx) -> pending).compensation((d, ctx) -> undone.add("book"))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));

        assertThrows(Error.class, () -> orchestrator.cancel("saga-1"));

        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        orchestrator.close();
    }
}
