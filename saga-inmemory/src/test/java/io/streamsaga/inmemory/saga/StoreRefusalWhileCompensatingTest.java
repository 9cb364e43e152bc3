package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A write the store refuses while the saga compensates (a compensation's failure whose class it cannot keep, as
 * JdbcSagaStore refuses a failure class longer than its column) is refused again on every retry, as a refused write of
 * a running saga is (StoreRefusalAfterTheStartTest): the saga is stored needing attention with the refusal as its
 * compensation failure, for an operator, rather than left compensating for every recover() to run the compensation
 * again, to be refused again.
 */
class StoreRefusalWhileCompensatingTest {
    record Data(String id) {
    }

    /** A compensation's error whose class the store below cannot keep. */
    static final class WarehouseUnreachable extends RuntimeException {
        WarehouseUnreachable() {
            super("warehouse unreachable");
        }
    }

    /**
     * Refuses every write holding a compensation failure of {@link WarehouseUnreachable}, as a durable store refuses a
     * failure class it cannot keep, and every write of a transition of type {@code alsoRefused}.
     */
    private static class RefusingStore extends ForwardingSagaStore {
        private final TransitionType alsoRefused;
        final AtomicInteger refusals = new AtomicInteger();

        RefusingStore(TransitionType alsoRefused) {
            this(alsoRefused, new InMemorySagaStore());
        }

        RefusingStore(TransitionType alsoRefused, InMemorySagaStore delegate) {
            super(delegate);
            this.alsoRefused = alsoRefused;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            refuse(updated, List.of(transition));
            delegate.update(updated, transition);
        }

        void refuse(SagaInstance updated, List<SagaTransition> transitions) {
            if (updated.compensationFailure() != null
                    && WarehouseUnreachable.class.getName().equals(updated.compensationFailure().errorClass())
                    || transitions.stream().anyMatch(t -> t.type() == alsoRefused)) {
                refusals.incrementAndGet();
                throw new ConfigurationException("failure class must be at most 500 characters, but was '"
                        + (updated.compensationFailure() == null ? "?" : updated.compensationFailure().errorClass()) + "'");
            }
        }
    }

    /**
     * {@link RefusingStore} taking transition batches and keeping no history, as {@code new InMemorySagaStore(false, ..)}
     * does: the engine then records no transitions at all, so none holds the errors of a write it refuses.
     */
    private static final class RefusingStoreWithoutHistory extends RefusingStore {
        RefusingStoreWithoutHistory() {
            super(null, new InMemorySagaStore(false, true));
        }

        @Override
        public boolean writesTransitionBatches() {
            return true;
        }

        @Override
        public boolean keepsHistory() {
            return false;
        }

        @Override
        public void insertAll(SagaInstance instance, List<SagaTransition> transitions) {
            delegate.insertAll(instance, transitions);
        }

        @Override
        public void updateAll(SagaInstance updated, List<SagaTransition> transitions) {
            refuse(updated, transitions);
            delegate.updateAll(updated, transitions);
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final IllegalStateException declined = new IllegalStateException("card declined");
    private final AtomicBoolean warehouseDown = new AtomicBoolean(true);
    private final AtomicInteger releases = new AtomicInteger();
    private final SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
            .step("reserve").action((d, ctx) -> d)
            .compensation((d, ctx) -> {
                releases.incrementAndGet();
                if (warehouseDown.get()) {
                    throw new WarehouseUnreachable();
                }
            })
            .compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw declined;
            })
            .build();

    @AfterEach
    void closeScheduler() {
        scheduler.close();
    }

    private SagaOrchestrator orchestrator(RefusingStore store) {
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
    }

    /**
     * Was: the refused COMPENSATION_FAILED was a store failure, the saga stayed COMPENSATING with its compensation in
     * flight, and each recover() ran the compensation again, whose failure was refused again, for ever.
     */
    @Test
    void aCompensationFailureTheStoreRefusesLeavesTheSagaNeedingAttentionNotCompensatedAgainByEveryRecovery() {
        RefusingStore store = new RefusingStore(null);
        SagaOrchestrator orchestrator = orchestrator(store);

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome(), result.toString());
        assertEquals("reserve", result.compensationFailure().step());
        assertEquals(ConfigurationException.class.getName(), result.compensationFailure().errorClass());
        assertEquals("charge", result.failure().step(), "the saga's own failure is the step's, as stored");
        assertInstanceOf(ConfigurationException.class, result.exception());
        List<Throwable> suppressed = List.of(result.exception().getSuppressed());
        assertTrue(suppressed.contains(declined), "the step's own error was swallowed: " + suppressed);
        assertTrue(suppressed.stream().anyMatch(WarehouseUnreachable.class::isInstance),
                "the compensation's own error was swallowed: " + suppressed);
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
        assertEquals(result.compensationFailure(), stored.compensationFailure());
        assertEquals(StepStatus.COMPENSATION_FAILED, stored.step("reserve").orElseThrow().status());

        assertEquals(List.of(), orchestrator.recover().resumed());
        assertEquals(1, releases.get(), "no recovery runs the compensation again");

        warehouseDown.set(false);
        SagaResult<Object> retried = orchestrator.retryCompensation("saga-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPENSATED, retried.outcome(), retried.toString());
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(2, releases.get());
        orchestrator.close();
    }

    /**
     * docs/durability.md: "the errors the refused write held (a step's failure, a compensation's) are suppressed by the
     * refusal, the result's exception()". On a store that takes batches and keeps no history the engine records no
     * transitions, and the compensation's error, held only by the transition it staged, was lost: the result carried
     * the step's error alone.
     */
    @Test
    void aCompensationFailureTheStoreRefusesKeepsTheCompensationsErrorOnAStoreThatKeepsNoHistory() {
        RefusingStore store = new RefusingStoreWithoutHistory();
        SagaOrchestrator orchestrator = orchestrator(store);

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome(), result.toString());
        assertEquals(StepStatus.COMPENSATION_FAILED, store.find("saga-1").orElseThrow().step("reserve").orElseThrow().status());
        List<Throwable> suppressed = List.of(result.exception().getSuppressed());
        assertTrue(suppressed.contains(declined), "the step's own error was swallowed: " + suppressed);
        assertTrue(suppressed.stream().anyMatch(WarehouseUnreachable.class::isInstance),
                "the compensation's own error was swallowed: " + suppressed);
        orchestrator.close();
    }

    @Test
    void aSagaWhoseCompensationFailureTheStoreRefusedIsSkippedOrResolvedByTheOperator() {
        RefusingStore store = new RefusingStore(null);
        SagaOrchestrator orchestrator = orchestrator(store);
        orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();
        orchestrator.start(definition, "saga-2", null, new Data("b")).toCompletableFuture().join();

        assertEquals(SagaOutcome.COMPENSATED,
                orchestrator.skipCompensation("saga-1", "reserve").toCompletableFuture().join().outcome());
        assertEquals(StepStatus.COMPENSATION_SKIPPED, store.find("saga-1").orElseThrow().step("reserve").orElseThrow().status());
        orchestrator.markResolved("saga-2");
        assertEquals(SagaStatus.RESOLVED, store.find("saga-2").orElseThrow().status());
        assertEquals(2, releases.get(), "each compensation ran once");
        orchestrator.close();
    }

    /**
     * The write that would mark the saga as needing attention is refused as well: nothing more is written, so the saga
     * stays stored as it was before the refused write (the last state the store took), and its result fails with a
     * SagaException that is not retriable (a retry meets the same refusal), whose cause is the first refusal, carrying
     * the second one and the original errors: the step's and the compensation's.
     */
    @Test
    void aNeedsAttentionWriteRefusedAsWellLeavesTheSagaAsStoredAndFailsTheResultWithEveryErrorKept() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_NEEDS_ATTENTION);
        SagaOrchestrator orchestrator = orchestrator(store);

        CompletionException thrown = assertThrows(CompletionException.class,
                () -> orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join());

        SagaException failure = assertInstanceOf(SagaException.class, thrown.getCause());
        assertFalse(failure.isRetriable(), "a retry meets the same refusal: " + failure);
        assertEquals("saga-1", failure.sagaId());
        assertEquals("reserve", failure.step());
        ConfigurationException refusal = assertInstanceOf(ConfigurationException.class, failure.getCause());
        List<Throwable> suppressed = List.of(refusal.getSuppressed());
        assertTrue(suppressed.stream().anyMatch(ConfigurationException.class::isInstance),
                "the needs-attention write's refusal: " + suppressed);
        assertTrue(suppressed.contains(declined), "the step's own error was swallowed: " + suppressed);
        assertTrue(suppressed.stream().anyMatch(WarehouseUnreachable.class::isInstance),
                "the compensation's own error was swallowed: " + suppressed);
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.COMPENSATING, stored.status(), "as stored before the refused write");
        assertEquals(StepStatus.COMPENSATING, stored.step("reserve").orElseThrow().status());
        assertEquals(2, store.refusals.get());
        orchestrator.close();
    }

    /**
     * A store may throw one exception instance for a refusal that does not change (a read-only mode, say): the
     * needs-attention write refused with the very instance that refused the first write was added to that instance's
     * suppressed, which Throwable rejects ("Self-suppression not permitted"); that IllegalArgumentException went out of
     * start(), the run neither stopped nor unregistered, so that no recover() of this orchestrator resumed the saga, left
     * compensating with nobody driving it.
     */
    @Test
    void aNeedsAttentionWriteRefusedWithTheFirstRefusalsVeryInstanceStopsTheRunForRecoveryToResume() {
        ConfigurationException readOnly = new ConfigurationException("the store is read-only");
        AtomicBoolean refusing = new AtomicBoolean(true);
        ForwardingSagaStore store = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (refusing.get() && updated.status() != SagaStatus.RUNNING
                        && transition.type() != TransitionType.SAGA_COMPENSATING
                        && transition.type() != TransitionType.COMPENSATION_STARTED) {
                    throw readOnly; // the compensation's failure, then the needs-attention write
                }
                delegate.update(updated, transition);
            }
        };
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .build();

        CompletionException thrown = assertThrows(CompletionException.class,
                () -> orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join());

        SagaException failure = assertInstanceOf(SagaException.class, thrown.getCause());
        assertFalse(failure.isRetriable(), failure.toString());
        assertEquals(readOnly, failure.getCause());
        assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status(), "as stored before");
        refusing.set(false);
        warehouseDown.set(false);
        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }
}
