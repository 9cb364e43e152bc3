package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An Error from the store while an observed saga's start is stored stops the run as if the process died
 * there (SagaRun.abandon): the Error is rethrown and the run is no longer registered, so its result completes
 * exceptionally and recover() in the same process resumes the saga, rather than a registered run that is
 * never driven, whose result never completes and which recover() skips.
 */
class StoreErrorWhenAnObservedSagaStartsTest {
    record Data(String id) {
    }

    /** Writes the saga's start, then throws an Error (the process "dies" right after the write). */
    private static final class ErrorAfterTheFirstInsertStore extends ForwardingSagaStore {
        private final AtomicBoolean failed = new AtomicBoolean();

        ErrorAfterTheFirstInsertStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void insert(SagaInstance instance, SagaTransition transition) {
            delegate.insert(instance, transition);
            if (failed.compareAndSet(false, true)) {
                throw new Error("the store's driver died");
            }
        }
    }

    @Test
    void anErrorStoringTheStartStopsTheRunAndRecoverResumesIt() {
        ErrorAfterTheFirstInsertStore store = new ErrorAfterTheFirstInsertStore();
        SagaDefinition<Data> definition = SagaDefinition.builder("start-saga", Data.class)
                .step("reserve").action((d, ctx) -> new Data("reserved"))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build();

        Error error = assertThrows(Error.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals("the store's driver died", error.getMessage());
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        // No longer driven here: "call recover() first", not a result that never completes.
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }
}
