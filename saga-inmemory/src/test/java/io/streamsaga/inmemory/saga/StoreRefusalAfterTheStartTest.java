package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store that refuses a write of a saga already stored (JdbcSagaStore: data that cannot be written as JSON) refuses it
 * again on every retry: the saga is stored as it was before that write, needing attention with the refusal as its
 * failure, rather than left running for every recover() to run its step again (a refused start stored nothing and
 * fails with the refusal itself).
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
    void aWriteRefusedAfterTheStartLeavesTheSagaNeedingAttentionWithTheRefusalAndAnOperatorRetryCompletesIt() {
        RefusingOnceStore store = new RefusingOnceStore(TransitionType.STEP_SUCCEEDED);
        SagaDefinition<Data> definition = SagaDefinition.builder("refused-saga", Data.class)
                .step("reserve").action((d, ctx) -> new Data("reserved"))
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertTrue(result.needsAttention(), result.toString());
        assertSame(store.refusal, result.exception());
        assertEquals(new SagaFailure("reserve", ConfigurationException.class.getName(), store.refusal.getMessage()),
                result.failure());
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
        assertEquals(new Data("a"), stored.data(), "the data as stored before the refused write");
        assertEquals(List.of(), orchestrator.recover().resumed());
        assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("saga-1").toCompletableFuture().join().outcome());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
        scheduler.close();
    }

    /**
     * docs/sagas.md: "The original error is never swallowed". A refused write that held a step's failure (the saga
     * about to compensate) leaves the saga needing attention with the refusal as its failure; the step's own error,
     * the reason it was compensating, goes with the refusal (suppressed by it) into the result, not only into a log.
     */
    @Test
    void aRefusedWriteOfAStepsFailureKeepsTheStepsOwnErrorInTheResult() {
        RefusingOnceStore store = new RefusingOnceStore(TransitionType.STEP_FAILED);
        IllegalStateException declined = new IllegalStateException("card declined");
        SagaDefinition<Data> definition = SagaDefinition.builder("refused-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> {
                    throw declined;
                })
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertTrue(result.needsAttention(), result.toString());
        assertSame(store.refusal, result.exception());
        assertTrue(List.of(result.exception().getSuppressed()).contains(declined),
                "the step's own error was swallowed: " + result);
        orchestrator.close();
        scheduler.close();
    }

    /**
     * A step whose result the store refuses to write (here: saga data with a map key holding a lone surrogate, which
     * JdbcSagaStore refuses as data that cannot be written as JSON that reads back, and so does the in-memory store
     * that keeps data as JSON) took effect, and every new attempt returns what is refused again. It was a store failure:
     * the result failed as retriable, the saga stayed stored as running, and each recover() ran the step again and
     * was refused again, for ever, with nobody told the saga needs a person. Now the saga is stored as it was before
     * that write with status FAILED_NEEDS_ATTENTION and the refusal as its failure, its result completes with that
     * outcome, recover() leaves it alone, and the operator's retry, once the step is fixed, runs the step again and
     * completes the saga.
     */
    @Test
    void aStepResultTheStoreRefusesLeavesTheSagaNeedingAttentionAsStoredBeforeNotRetriedByEveryRecovery() {
        InMemorySagaStore store = InMemorySagaStore.serializingJson(io.streamsaga.codec.JsonEventCodec.defaultMapper());
        AtomicBoolean fixed = new AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        SagaDefinition<Items> definition = SagaDefinition.builder("items-saga", Items.class)
                .step("reserve").action((d, ctx) -> new Items(java.util.Map.of("a", 1)))
                .step("price").action((d, ctx) -> {
                    runs.incrementAndGet();
                    return new Items(java.util.Map.of(fixed.get() ? "b" : "b-\uD800", 2));
                })
                .step("ship").action((d, ctx) -> d)
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        List<SagaInstance> failed = new java.util.concurrent.CopyOnWriteArrayList<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .listener(new io.streamsaga.saga.SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        failed.add(instance);
                    }
                }).build();

        SagaResult<Items> result = orchestrator.start(definition, "saga-1", null, new Items(java.util.Map.of()))
                .toCompletableFuture().join();

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals(ConfigurationException.class.getName(), result.failure().errorClass());
        assertEquals("price", result.failure().step());
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
        assertEquals(result.failure(), stored.failure());
        assertEquals(java.util.Map.of("a", 1), io.streamsaga.codec.JsonEventCodec.defaultMapper()
                .convertValue(stored.data(), Items.class).items(), "the data as last stored, before the refused write");
        assertEquals(new Items(java.util.Map.of("a", 1)), result.data());
        assertEquals(1, failed.size());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, failed.get(0).status());
        assertEquals(new Items(java.util.Map.of("a", 1)), failed.get(0).data(), "the listener gets the data bound");
        assertEquals(List.of(), orchestrator.recover().resumed());
        assertEquals(1, runs.get(), "no recovery runs the step again");

        fixed.set(true);
        SagaResult<Object> retried = orchestrator.retryCompensation("saga-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, retried.outcome());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(2, runs.get());
        orchestrator.close();
        scheduler.close();
    }

    /** Throws {@code failure} at the first write of a step's success, as a store whose write meets what it holds. */
    private static ForwardingSagaStore failingOnceAtAStepsSuccess(RuntimeException failure) {
        AtomicBoolean failed = new AtomicBoolean();
        return new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.STEP_SUCCEEDED && failed.compareAndSet(false, true)) {
                    throw failure;
                }
                delegate.update(updated, transition);
            }
        };
    }

    /**
     * A store's SagaWriteRefusedException (JdbcSagaStore: the transactional outbox holds the id of a message of the
     * write already, which the same write meets again) is a refusal, as a ConfigurationException is: it was a store
     * failure, the saga left running for every recover() to make the same write again. A failure that is not the
     * write's (a permission denied, not retriable by itself) stays a store failure that recover() retries.
     */
    @Test
    void aWriteTheStoreRefusesForWhatItMeetsLeavesTheSagaNeedingAttentionButAFailureNotTheWritesStaysForRecover() {
        SagaDefinition<Data> definition = SagaDefinition.builder("refused-saga", Data.class)
                .step("reserve").action((d, ctx) -> new Data("reserved"))
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaWriteRefusedException refusal = new SagaWriteRefusedException("the outbox holds message 'm-1' already", null);
        ForwardingSagaStore refusing = failingOnceAtAStepsSuccess(refusal);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(refusing).scheduler(scheduler)
                .register(definition).build()) {
            SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture()
                    .join();
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
            assertSame(refusal, result.exception());
            assertEquals(new SagaFailure("reserve", SagaWriteRefusedException.class.getName(), refusal.getMessage()),
                    result.failure());
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, refusing.find("saga-1").orElseThrow().status());
            assertEquals(List.of(), orchestrator.recover().resumed());
        }

        ForwardingSagaStore failing = failingOnceAtAStepsSuccess(new StreamSagaException("permission denied", false));
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(failing).scheduler(scheduler)
                .register(definition).build()) {
            var stage = orchestrator.start(definition, "saga-2", null, new Data("a")).toCompletableFuture();
            SagaException storeFailed = assertInstanceOf(SagaException.class,
                    assertThrows(java.util.concurrent.CompletionException.class, stage::join).getCause());
            assertTrue(storeFailed.isRetriable(), storeFailed.toString());
            assertEquals(SagaStatus.RUNNING, failing.find("saga-2").orElseThrow().status());
            assertEquals(List.of("saga-2"), orchestrator.recover().resumed());
            assertEquals(SagaStatus.COMPLETED, failing.find("saga-2").orElseThrow().status());
        }
        scheduler.close();
    }

    record Items(java.util.Map<String, Integer> items) {
    }
}
