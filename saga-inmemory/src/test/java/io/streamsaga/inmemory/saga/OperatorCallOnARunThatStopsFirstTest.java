package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaCompensation;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator call that found the saga's run registered here and waited for its lock while the run stopped (its write
 * lost to another orchestrator's, say): the call did not happen, and its caller learns so from its stage, as one whose
 * own write loses (OperatorCallThatLosesARaceTest), rather than holding a stage that nothing completes; while the store's
 * refusal of the run's write finished it needing attention: the call is made on the saga as stored.
 */
class OperatorCallOnARunThatStopsFirstTest {
    record Data(String id) {
    }

    @Test
    void aRetryCompensationWaitingForARunThatStopsMeanwhileFailsItsStageWithTheReason() throws Exception {
        LosingStore store = new LosingStore(TransitionType.SAGA_NEEDS_ATTENTION);
        Object retried = callWaitingForTheRunsWrite(store, store.writing, store.lose, (d, ctx) -> {
            throw new IllegalStateException("warehouse down");
        }, orchestrator -> orchestrator.retryCompensation("saga-1"));

        CompletableFuture<?> stage = assertInstanceOf(CompletionStage.class, retried).toCompletableFuture();
        assertTrue(stage.isDone(), "the stage of the call on a run that stopped meanwhile never completes");
        CompletionException thrown = assertThrows(CompletionException.class, stage::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, thrown.getCause());
    }

    @Test
    void aRetryCompensationWaitingForARunThatTheStoresRefusalFinishesNeedingAttentionRetriesTheSagaAsStored()
            throws Exception {
        RefusingOnceStore store = new RefusingOnceStore();
        AtomicInteger compensations = new AtomicInteger();

        Object retried = callWaitingForTheRunsWrite(store, store.writing, store.release,
                (d, ctx) -> compensations.incrementAndGet(),
                orchestrator -> orchestrator.retryCompensation("saga-1").toCompletableFuture().join());

        // The saga needed attention when the call took the lock, so the call retries it: not the stopped run's result.
        SagaResult<?> result = assertInstanceOf(SagaResult.class, retried);
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals(1, compensations.get());
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
    }

    @Test
    void aMarkResolvedWaitingForARunThatTheStoresRefusalFinishesNeedingAttentionResolvesTheSaga() throws Exception {
        RefusingOnceStore store = new RefusingOnceStore();

        Object resolved = callWaitingForTheRunsWrite(store, store.writing, store.release, (d, ctx) -> {
        }, orchestrator -> {
            orchestrator.markResolved("saga-1");
            return "resolved";
        });

        assertEquals("resolved", resolved, () -> "markResolved threw " + resolved);
        assertEquals(SagaStatus.RESOLVED, store.find("saga-1").orElseThrow().status());
    }

    @Test
    void aRetryCompensationWaitingForARunThatFinishesNeedingAttentionMeanwhileRetriesTheSagaOnARunRegisteredHere()
            throws Exception {
        HoldingStore store = new HoldingStore();
        AtomicInteger compensations = new AtomicInteger();
        AtomicReference<SagaOrchestrator> orchestratorRef = new AtomicReference<>();
        AtomicReference<CompletableFuture<SagaResult<Object>>> resultDuringTheRetry = new AtomicReference<>();

        Object retried = callWaitingForTheRunsWrite(store, store.writing, store.release, (d, ctx) -> {
            if (compensations.incrementAndGet() == 1) {
                throw new IllegalStateException("warehouse down");
            }
            resultDuringTheRetry.set(orchestratorRef.get().result("saga-1").toCompletableFuture());
        }, orchestrator -> {
            orchestratorRef.set(orchestrator);
            return orchestrator.retryCompensation("saga-1").toCompletableFuture().join();
        });

        SagaResult<?> result = assertInstanceOf(SagaResult.class, retried, () -> "retryCompensation gave " + retried);
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals(2, compensations.get());
        // The retry was driven by a run registered here, whose result result() gives, not by the finished run.
        Object seen = resultDuringTheRetry.get().handle((r, e) -> e != null ? e : r).join();
        SagaResult<?> seenResult = assertInstanceOf(SagaResult.class, seen, () -> "result() during the retry gave " + seen);
        assertEquals(SagaOutcome.COMPENSATED, seenResult.outcome());
    }

    @Test
    void aCancelWaitingForARunWhoseWriteOfItsCompensationLosesMeanwhileThrowsTheReasonNotTheUnwrittenStatus()
            throws Exception {
        LosingStore store = new LosingStore(TransitionType.SAGA_COMPENSATING);

        Object cancelled = callWaitingForTheRunsWrite(store, store.writing, store.lose, (d, ctx) -> {
        }, orchestrator -> {
            orchestrator.cancel("saga-1");
            return "cancelled";
        });

        // The run's COMPENSATING was never stored: the call lost as the run did, and says so, not that the saga compensates.
        assertInstanceOf(ConcurrentSagaUpdateException.class, cancelled, () -> "cancel gave " + cancelled);
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
    }

    @Test
    void aCancelWaitingForARunThatAnErrorStopsBeforeItsWriteOfItsCompensationThrowsTheReasonNotTheUnwrittenStatus()
            throws Exception {
        ErringStore store = new ErringStore();

        Object cancelled = callWaitingForTheRunsWrite(store, store.writing, store.release, (d, ctx) -> {
        }, orchestrator -> {
            orchestrator.cancel("saga-1");
            return "cancelled";
        });

        // The run, abandoned for the store's Error, never stored its COMPENSATING: the call did not happen and says why.
        SagaException thrown = assertInstanceOf(SagaException.class, cancelled, () -> "cancel gave " + cancelled);
        assertSame(store.error, thrown.getCause(), () -> "cancel threw " + thrown);
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
    }

    /**
     * Starts saga-1 (reserve, then charge, which fails) on {@code store}, which refuses the start of reserve's
     * compensation once, with a listener that makes {@code call} from onFailed, on the run's own thread (the run,
     * finished as the refusal stopped it, is still registered while it reports so), and returns the saga's result.
     */
    private static SagaResult<Data> callFromAListenerHearingThatTheStoresRefusalFinishesTheRun(
            RefusingOnceStore store, InMemoryMetrics metrics, Function<SagaOrchestrator, Object> call) {
        store.release.countDown(); // nothing held: the listener's call is made on the run's own thread
        AtomicReference<SagaOrchestrator> orchestratorRef = new AtomicReference<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                })
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .metrics(metrics).listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        call.apply(orchestratorRef.get());
                    }
                })
                .build();
        orchestratorRef.set(orchestrator);
        try {
            return orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();
        } finally {
            orchestrator.close();
            scheduler.close();
        }
    }

    @Test
    void aMarkResolvedFromAListenerHearingThatTheStoresRefusalFinishesTheRunNeedingAttentionResolvesTheSaga() {
        RefusingOnceStore store = new RefusingOnceStore();

        callFromAListenerHearingThatTheStoresRefusalFinishesTheRun(store, new InMemoryMetrics(), orchestrator -> {
            orchestrator.markResolved("saga-1");
            return null;
        });

        assertEquals(SagaStatus.RESOLVED, store.find("saga-1").orElseThrow().status());
    }

    @Test
    void aSagaThatAListenerResolvesAsTheStoresRefusalFinishesItNeedingAttentionIsCountedResolvedOnly() {
        InMemoryMetrics metrics = new InMemoryMetrics();

        SagaResult<Data> result = callFromAListenerHearingThatTheStoresRefusalFinishesTheRun(new RefusingOnceStore(),
                metrics, orchestrator -> {
                    orchestrator.markResolved("saga-1");
                    return null;
                });

        assertEquals(SagaOutcome.RESOLVED, result.outcome(), result.toString());
        assertEquals(1, metrics.sagasFinished("order-saga", "resolved"));
        assertEquals(0, metrics.sagasFinished("order-saga", "failed"), "the saga was counted resolved and failed");
    }

    @Test
    void aSagaThatAListenerRetriesAsTheStoresRefusalFinishesItNeedingAttentionGoesOnAndIsCountedByItsOutcomeOnly() {
        InMemoryMetrics metrics = new InMemoryMetrics();

        SagaResult<Data> result = callFromAListenerHearingThatTheStoresRefusalFinishesTheRun(new RefusingOnceStore(),
                metrics, orchestrator -> orchestrator.retryCompensation("saga-1"));

        assertEquals(SagaOutcome.COMPENSATED, result.outcome(), result.toString());
        assertEquals(1, metrics.sagasFinished("order-saga", "compensated"));
        assertEquals(0, metrics.sagasFinished("order-saga", "failed"), "the saga was counted compensated and failed");
    }

    @Test
    void aSkipCompensationFromAListenerHearingThatABatchingStoresRefusalFinishesTheRunIsWrittenAndTheRunFinishesOnce() {
        // Takes batches; refuses the one holding the flight's compensation's success, the hotel's failed for good.
        SagaStore store = new StoreRefusalOfAnOperatorCallTest.BatchingRefusingStore(TransitionType.COMPENSATION_SUCCEEDED);
        AtomicReference<SagaOrchestrator> orchestratorRef = new AtomicReference<>();
        AtomicReference<CompletionStage<SagaResult<Object>>> skipped = new AtomicReference<>();
        // The group's members run on the calling thread: the refusal comes inside the pass that drives the saga.
        SagaDefinition<Data> definition = SagaDefinition.builder("trip-saga", Data.class)
                .parallel(group -> {
                    group.step("hotel").action((d, ctx) -> d).compensation((d, ctx) -> {
                        throw new IllegalStateException("hotel desk closed");
                    }).compensationRetry(RetryPolicy.NONE);
                    group.step("flight").action((d, ctx) -> d).compensation((d, ctx) -> {
                    });
                })
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        InMemoryMetrics metrics = new InMemoryMetrics();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .parallelExecutor(Runnable::run).metrics(metrics).listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        if (skipped.get() == null) { // both compensations failed (the flight's by the refusal): one skipped
                            skipped.set(orchestratorRef.get().skipCompensation("saga-1", "hotel"));
                        }
                    }
                })
                .build();
        orchestratorRef.set(orchestrator);

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture()
                .join();

        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(StepStatus.COMPENSATION_SKIPPED, stored.step("hotel").orElseThrow().status(), "the listener's"
                + " skip, made on the run, was never written: " + stored);
        assertEquals(StepStatus.COMPENSATION_FAILED, stored.step("flight").orElseThrow().status());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals(1, metrics.sagasFinished("trip-saga", "failed"));
        assertEquals(result, skipped.get().toCompletableFuture().join());
        orchestrator.close();
        scheduler.close();
    }

    @Test
    void aRetryFromAListenerHearingThatTheStoreRefusedAnAsynchronousStepsOutcomeKeepsTheRetriedAttemptsResult() {
        // Refuses the first write of reserve's success (a result it cannot keep): the retried attempt's it takes.
        AtomicBoolean refusedOnce = new AtomicBoolean();
        SagaStore store = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.STEP_SUCCEEDED && refusedOnce.compareAndSet(false, true)) {
                    throw new ConfigurationException("the store cannot keep this value");
                }
                delegate.update(updated, transition);
            }
        };
        CompletableFuture<Data> firstAttempt = new CompletableFuture<>();
        CompletableFuture<Data> shipped = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> ctx.attempt() == 1 ? firstAttempt
                        : CompletableFuture.completedFuture(new Data("reserved again")))
                .compensation((d, ctx) -> {
                })
                .step("ship").asyncAction((d, ctx) -> shipped) // completes with no result: the data stays as it is
                .build();
        AtomicReference<SagaOrchestrator> orchestratorRef = new AtomicReference<>();
        AtomicReference<CompletionStage<SagaResult<Object>>> retried = new AtomicReference<>();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        if (retried.get() == null) { // the participant is fixed: the operator's retry, made on the run
                            retried.set(orchestratorRef.get().retryCompensation("saga-1"));
                        }
                    }
                })
                .build();
        orchestratorRef.set(orchestrator);
        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("new"))
                .toCompletableFuture();

        firstAttempt.complete(new Data("too large to keep")); // outside a drive pass, as an outcome comes
        shipped.complete(null);

        assertEquals(SagaOutcome.COMPLETED, result.join().outcome(), result.join().toString());
        assertEquals(new Data("reserved again"), result.join().data(), "the retried attempt's result was lost");
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(new Data("reserved again"), store.find("saga-1").orElseThrow().data(), "as stored");
        orchestrator.close();
        scheduler.close();
    }

    /**
     * Starts saga-1 (reserve, undone by {@code compensation}, then charge, which fails) on a thread; once {@code store}
     * says that its run, holding its lock, writes the saga ({@code writing}), makes {@code call} on
     * another thread, lets the write go on ({@code release}) once the call waits for that lock, and returns what the
     * call returned, or the exception it threw.
     */
    private static Object callWaitingForTheRunsWrite(SagaStore store, CountDownLatch writing,
                                                                  CountDownLatch release, SagaCompensation<Data> compensation,
                                                                  Function<SagaOrchestrator, Object> call)
            throws InterruptedException {
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation(compensation).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .build();
        Thread starter = new Thread(() -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        starter.start();
        writing.await(); // the run, registered, writes the saga

        AtomicReference<Object> outcome = new AtomicReference<>();
        Thread operator = new Thread(() -> {
            try {
                outcome.set(call.apply(orchestrator));
            } catch (RuntimeException e) {
                outcome.set(e);
            }
        });
        operator.start();
        await().until(() -> operator.getState() == Thread.State.BLOCKED); // on the run's lock
        release.countDown();
        operator.join();
        starter.join();
        orchestrator.close();
        scheduler.close();
        return outcome.get();
    }

    /**
     * Holds the run's write of a transition of type {@code lostAt} (the run holding its lock) until {@code lose}, then
     * refuses it as lost to another orchestrator's write.
     */
    private static final class LosingStore extends ForwardingSagaStore {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch lose = new CountDownLatch(1);
        private final TransitionType lostAt;

        LosingStore(TransitionType lostAt) {
            super(new InMemorySagaStore());
            this.lostAt = lostAt;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == lostAt) {
                writing.countDown();
                try {
                    lose.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new ConcurrentSagaUpdateException(updated.sagaId(), updated.version() - 1, updated.version());
            }
            delegate.update(updated, transition);
        }
    }

    /**
     * Holds the run's write of the saga compensating (the run holding its lock) until released, then throws an Error (a
     * bug in the store, say), for which the run stops as if the process died there.
     */
    private static final class ErringStore extends ForwardingSagaStore {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final AssertionError error = new AssertionError("a bug in the store");

        ErringStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.SAGA_COMPENSATING) {
                writing.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw error;
            }
            delegate.update(updated, transition);
        }
    }

    /** Holds the run's write of the saga needing attention (the run holding its lock) until released, then takes it. */
    private static final class HoldingStore extends ForwardingSagaStore {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        HoldingStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.SAGA_NEEDS_ATTENTION && writing.getCount() > 0) {
                writing.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            delegate.update(updated, transition);
        }
    }

    /**
     * Refuses the first write of a compensation's start, as a value it cannot keep, and holds the run's write of the
     * saga needing attention (the run holding its lock) until released, then takes it.
     */
    private static final class RefusingOnceStore extends ForwardingSagaStore {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        private final AtomicBoolean refused = new AtomicBoolean();

        RefusingOnceStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.COMPENSATION_STARTED && refused.compareAndSet(false, true)) {
                throw new ConfigurationException("the store cannot keep this value");
            }
            if (transition.type() == TransitionType.SAGA_NEEDS_ATTENTION) {
                writing.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            delegate.update(updated, transition);
        }
    }
}
