package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store that refuses a write of a saga already stored (JdbcSagaStore: data that cannot be written as JSON) leaves
 * the saga stored as it was, running: the run stops as on any store failure (retriable, resumed by recover()),
 * unlike a refused start, which stored nothing and fails with the refusal itself.
 */
class StoreRefusalAfterTheStartTest {
    record Data(String id) {
    }

    /** Refuses the first write of a transition of type {@code refused}, as JdbcSagaStore refuses data it cannot write. */
    private static final class RefusingOnceStore extends ForwardingSagaStore {
        private final AtomicBoolean refusedOnce = new AtomicBoolean();
        private final TransitionType refused;
        final ConfigurationException refusal = new ConfigurationException("data of saga saga-1 cannot be written as JSON");

        RefusingOnceStore(TransitionType refused) {
            super(new InMemorySagaStore());
            this.refused = refused;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == refused && refusedOnce.compareAndSet(false, true)) {
                throw refusal;
            }
            delegate.update(updated, transition);
        }
    }

    @Test
    void aWriteRefusedAfterTheStartFailsTheResultAsAStoreFailureThatRecoverResumes() {
        RefusingOnceStore store = new RefusingOnceStore(TransitionType.STEP_SUCCEEDED);
        SagaDefinition<Data> definition = SagaDefinition.builder("refused-saga", Data.class)
                .step("reserve").action((d, ctx) -> new Data("reserved"))
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();

        CompletionException failed = assertThrows(CompletionException.class, result::join);
        SagaException stopped = assertInstanceOf(SagaException.class, failed.getCause(), failed.toString());
        assertTrue(stopped.isRetriable(), "the saga is stored as running and resumed by recover(): " + stopped);
        assertSame(store.refusal, stopped.getCause());
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
        scheduler.close();
    }
}
