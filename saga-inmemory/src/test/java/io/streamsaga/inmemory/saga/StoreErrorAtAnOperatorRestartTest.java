package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator's retryCompensation or skipCompensation of an observed saga writes its transition before the lifecycle
 * event and the listeners hear of it, outside a drive pass: an Error from the store there (or from a listener, a
 * test's SimulatedProcessCrash) must stop the run as any Error does (the saga stays as stored, the run's result fails,
 * the run is no longer registered), not leave a run registered as compensating that the store never heard of, on
 * which the operator's next call is refused and whose result never completes.
 */
class StoreErrorAtAnOperatorRestartTest {
    record Data(String id) {
    }

    /** Throws an Error, once, instead of writing a transition of type {@code failing}. */
    private static final class ErrorOnceStore extends ForwardingSagaStore {
        private final AtomicBoolean failed = new AtomicBoolean();
        private final TransitionType failing;

        ErrorOnceStore(TransitionType failing) {
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

    private final AtomicBoolean releaseRefused = new AtomicBoolean(true);
    private final SagaDefinition<Data> definition = SagaDefinition.builder("order", Data.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                if (releaseRefused.get()) {
                    throw new IllegalStateException("release refused");
                }
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    private void anErrorAtTheWriteOf(TransitionType type, Consumer<SagaOrchestrator> operatorCall) {
        ErrorOnceStore store = new ErrorOnceStore(type);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .listener(new SagaListener() {
                })
                .register(definition).build()) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(definition, "s-1", null, new Data("a"))
                    .toCompletableFuture().join().outcome());
            releaseRefused.set(false);

            assertThrows(Error.class, () -> operatorCall.accept(orchestrator));

            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-1").orElseThrow().status());
            assertTrue(orchestrator.result("s-1").toCompletableFuture().isDone(), "the stopped run's result is done");
            // The run is no longer registered: the operator's next call is made on the saga as stored.
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.retryCompensation("s-1").toCompletableFuture().join()
                    .outcome());
        }
    }

    @Test
    void anErrorFromTheStoreAtAnOperatorsRetryStopsTheRunLeavingTheSagaAsStored() {
        anErrorAtTheWriteOf(TransitionType.SAGA_RETRIED, o -> o.retryCompensation("s-1"));
    }

    @Test
    void anErrorFromTheStoreAtAnOperatorsSkipStopsTheRunLeavingTheSagaAsStored() {
        anErrorAtTheWriteOf(TransitionType.COMPENSATION_SKIPPED, o -> o.skipCompensation("s-1", "reserve"));
    }
    /** The same for markResolved, whose write is followed by its 'resolved' event and SagaListener.onResolved. */
    @Test
    void anErrorFromTheStoreAtAnOperatorsResolveStopsTheRunLeavingTheSagaAsStored() {
        anErrorAtTheWriteOf(TransitionType.SAGA_RESOLVED, o -> o.markResolved("s-1"));
    }
}
