package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An asynchronous action or compensation whose stage is already complete when returned settles on the thread
 * that drives the saga: an Error from the store while its outcome is written must reach that thread's caller
 * as for a synchronous action (SagaOrchestrator: "the Error propagates to that thread (from start ...)"), not
 * be swallowed by the stage's dependent while start() returns as if nothing happened; recover() resumes it.
 */
class StoreErrorOnAnAlreadyCompletedStageTest {
    record Data(String id) {
    }

    /** Throws an Error, once, instead of writing a transition of type {@code failing}. */
    private static final class ErrorOnceStore extends ForwardingSagaStore {
        private final AtomicBoolean failed = new AtomicBoolean();
        private final TransitionType failing;
        private final Error error;

        ErrorOnceStore(TransitionType failing, Error error) {
            super(new InMemorySagaStore());
            this.failing = failing;
            this.error = error;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == failing && failed.compareAndSet(false, true)) {
                throw error;
            }
            delegate.update(updated, transition);
        }
    }

    @Test
    void anErrorStoringTheOutcomeOfAnAlreadyCompletedActionStageReachesStartsCaller() {
        Error error = new Error("the store's driver died");
        ErrorOnceStore store = new ErrorOnceStore(TransitionType.STEP_SUCCEEDED, error);
        SagaDefinition<Data> definition = SagaDefinition.builder("async-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> CompletableFuture.completedFuture(new Data("reserved")))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build();

        AtomicReference<CompletionStage<SagaResult<Data>>> result = new AtomicReference<>();
        Error thrown = assertThrows(Error.class,
                () -> result.set(orchestrator.start(definition, "saga-1", null, new Data("a"))));

        assertSame(error, thrown);
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }

    @Test
    void anErrorStoringTheOutcomeOfAnAlreadyCompletedCompensationStageReachesStartsCaller() {
        Error error = new Error("the store's driver died");
        ErrorOnceStore store = new ErrorOnceStore(TransitionType.COMPENSATION_SUCCEEDED, error);
        List<String> undone = new java.util.concurrent.CopyOnWriteArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("async-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).asyncCompensation((d, ctx) -> {
                    undone.add("reserve");
                    return CompletableFuture.completedFuture(null);
                })
                .step("book").action((d, ctx) -> {
                    throw new IllegalStateException("sold out");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build();

        Error thrown = assertThrows(Error.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));

        assertSame(error, thrown);
        assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status());
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("reserve", "reserve"), undone);
        orchestrator.close();
    }
}
