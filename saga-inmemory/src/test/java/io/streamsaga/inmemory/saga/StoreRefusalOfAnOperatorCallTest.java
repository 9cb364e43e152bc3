package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator call whose own write the store refuses (a value it cannot keep) did not happen: its caller gets the
 * store's {@link ConfigurationException} itself (not a retriable store failure: a retry meets the same refusal), from
 * the call for {@code cancel} and {@code markResolved}, from the returned stage for {@code retryCompensation} and
 * {@code skipCompensation}, and the saga stays as stored, as for a call that loses a race
 * (OperatorCallThatLosesARaceTest); the refusal of a running saga's cancellation does not turn the saga into one
 * needing attention, as a refused write of the running saga's own progress does (StoreRefusalAfterTheStartTest).
 */
class StoreRefusalOfAnOperatorCallTest {
    record Data(String id) {
    }

    /** Version 2's data: notes by name. */
    record NotedData(String id, java.util.Map<String, String> notes) {
    }

    /**
     * Refuses every write of a transition of type {@code refused}, as a durable store refuses a value it cannot keep (also
     * used by OperatorCallOnARunThatStopsFirstTest).
     */
    static class RefusingStore extends ForwardingSagaStore {
        final TransitionType refused;
        final ConfigurationException refusal = new ConfigurationException("owner node id must be at most 200 characters");

        RefusingStore(TransitionType refused) {
            super(new InMemorySagaStore());
            this.refused = refused;
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == refused) {
                throw refusal;
            }
            delegate.update(updated, transition);
        }
    }

    /** {@link RefusingStore} taking transition batches, as InMemorySagaStore and JdbcSagaStore without a lifecycle topic do. */
    static class BatchingRefusingStore extends RefusingStore {
        BatchingRefusingStore(TransitionType refused) {
            super(refused);
        }

        @Override
        public boolean writesTransitionBatches() {
            return true;
        }

        @Override
        public void insertAll(SagaInstance instance, java.util.List<SagaTransition> transitions) {
            delegate.insertAll(instance, transitions);
        }

        @Override
        public void updateAll(SagaInstance updated, java.util.List<SagaTransition> transitions) {
            if (transitions.stream().anyMatch(t -> t.type() == refused)) {
                throw refusal;
            }
            delegate.updateAll(updated, transitions);
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final SagaDefinition<Data> needingAttention = SagaDefinition.builder("order-saga", Data.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                throw new IllegalStateException("warehouse down");
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            })
            .build();

    @AfterEach
    void closeScheduler() {
        scheduler.close();
    }

    /** The saga started on {@code store} (by an orchestrator closed since), and a fresh orchestrator over it. */
    private SagaOrchestrator started(RefusingStore store, SagaDefinition<Data> definition) {
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        first.close();
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
    }

    private static ConfigurationException refusalOf(Supplier<? extends java.util.concurrent.CompletionStage<?>> call) {
        CompletableFuture<?> stage = call.get().toCompletableFuture();
        assertTrue(stage.isDone(), "the stage of a call whose write was refused never completes");
        CompletionException thrown = assertThrows(CompletionException.class, stage::join);
        return assertInstanceOf(ConfigurationException.class, thrown.getCause());
    }

    /**
     * On a saga needing attention, an operator call whose write of a {@code refused} transition the store refuses gets
     * the refusal itself ({@code call} returns what it got: from the call, or from its stage) and leaves the saga as
     * stored.
     */
    private void assertRefusedLeavingTheSagaAsStored(TransitionType refused,
                                                     java.util.function.Function<SagaOrchestrator, ConfigurationException> call) {
        RefusingStore store = new RefusingStore(refused);
        SagaOrchestrator orchestrator = started(store, needingAttention);
        SagaInstance before = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, before.status());

        assertSame(store.refusal, call.apply(orchestrator));

        assertEquals(before, store.find("saga-1").orElseThrow());
        orchestrator.close();
    }

    @Test
    void aRetryCompensationWhoseWriteTheStoreRefusesFailsItsStageWithTheRefusalAndLeavesTheSagaAsStored() {
        assertRefusedLeavingTheSagaAsStored(TransitionType.SAGA_RETRIED,
                orchestrator -> refusalOf(() -> orchestrator.retryCompensation("saga-1")));
    }

    @Test
    void aSkipCompensationWhoseWriteTheStoreRefusesFailsItsStageWithTheRefusalAndLeavesTheSagaAsStored() {
        assertRefusedLeavingTheSagaAsStored(TransitionType.COMPENSATION_SKIPPED,
                orchestrator -> refusalOf(() -> orchestrator.skipCompensation("saga-1", "reserve")));
    }

    @Test
    void aMarkResolvedWhoseWriteTheStoreRefusesThrowsTheRefusalAndLeavesTheSagaAsStored() {
        assertRefusedLeavingTheSagaAsStored(TransitionType.SAGA_RESOLVED, orchestrator ->
                assertThrows(ConfigurationException.class, () -> orchestrator.markResolved("saga-1")));
    }

    /**
     * The cancellation of a running saga is the operator's write, not the saga's progress: refused, it is not taken for
     * a write of the running saga that the store refuses (which stores the saga needing attention); the call throws the
     * refusal, the saga stays running as stored, and recover() resumes it.
     */
    @Test
    void aCancelWhoseWriteTheStoreRefusesThrowsTheRefusalAndLeavesTheSagaRunningAsStored() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_COMPENSATING);
        CompletableFuture<Data> charge = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").asyncAction((d, ctx) -> charge) // still running at the close
                .build();
        SagaOrchestrator orchestrator = started(store, definition);
        SagaInstance before = store.find("saga-1").orElseThrow();

        assertSame(store.refusal, assertThrows(ConfigurationException.class, () -> orchestrator.cancel("saga-1")));

        assertEquals(before, store.find("saga-1").orElseThrow());
        assertEquals(SagaStatus.RUNNING, before.status());
        orchestrator.recover();
        charge.complete(new Data("charged"));
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }

    /**
     * A cancel made while the run is driven (an action cancelling its own saga) on a store that takes batches staged its
     * write for the pass to write after the call had returned as if it had cancelled; the refusal then was taken for
     * one of the running saga's progress, and the saga was stored needing attention. The call's own write is now made
     * within the call: the call throws the refusal, and the saga stays running as stored; its run, driven here, goes on
     * as if the call had not been made, to complete here, its action run once (it stopped, for recover() to run the
     * action again).
     */
    @Test
    void aCancelFromTheSagasOwnActionWhoseWriteTheStoreRefusesThrowsTheRefusalAndTheSagaGoesOnAsIfItHadNotBeenMade() {
        BatchingRefusingStore store = new BatchingRefusingStore(TransitionType.SAGA_COMPENSATING);
        java.util.concurrent.atomic.AtomicReference<SagaOrchestrator> self = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicReference<RuntimeException> cancelled = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicInteger charges = new java.util.concurrent.atomic.AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> {
                    charges.incrementAndGet();
                    if (cancelled.get() == null) {
                        cancelled.set(assertThrows(RuntimeException.class, () -> self.get().cancel(ctx.sagaId()),
                                "the cancel returned as if it had cancelled"));
                    }
                    return d;
                }).compensation((d, ctx) -> { })
                .step("ship").action((d, ctx) -> d)
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .build();
        self.set(orchestrator);

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture()
                .join();

        assertSame(store.refusal, cancelled.get());
        assertEquals(SagaOutcome.COMPLETED, result.outcome(), result.toString());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, charges.get(), "the charge ran once");
        assertTrue(store.history("saga-1").stream().noneMatch(t -> t.type() == TransitionType.SAGA_COMPENSATING));
        orchestrator.close();
    }

    /**
     * A call on a saga of a version no longer registered stores its migration first: data the upcaster makes that the
     * store refuses (a map key holding a lone surrogate, which JSON cannot read back in a name) fails the call with the
     * refusal, thrown by the call, and the saga stays as stored, at its old version.
     */
    @Test
    void anOperatorCallWhoseMigrationTheStoreRefusesThrowsTheRefusalAndLeavesTheSagaAtItsOldVersion() throws Exception {
        InMemorySagaStore store = InMemorySagaStore.serializingJson(JsonEventCodec.defaultMapper());
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(needingAttention).build();
        first.start(needingAttention, "saga-1", null, new Data("a")).toCompletableFuture().get(1, TimeUnit.SECONDS);
        first.close();
        SagaInstance before = store.find("saga-1").orElseThrow();
        SagaDefinition<NotedData> v2 = SagaDefinition.builder("order-saga", NotedData.class).version(2)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> d)
                .build();
        SagaOrchestrator upgraded = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("order-saga", 1, data -> {
                    data.putObject("notes").put("note-\uD800", "x");
                    return data;
                })
                .build();

        assertThrows(ConfigurationException.class, () -> upgraded.retryCompensation("saga-1"));
        assertThrows(ConfigurationException.class, () -> upgraded.markResolved("saga-1"));

        assertEquals(before, store.find("saga-1").orElseThrow());
        assertEquals(1, store.find("saga-1").orElseThrow().definitionVersion());
        upgraded.close();
    }

    /**
     * A retriable step after the pivot that fails at each attempt until {@code fixed} (counted in {@code runs}), with
     * no retries: the saga needs attention once it failed, for the operator to retry.
     */
    private static SagaDefinition<Data> shippingAfterThePivot(java.util.concurrent.atomic.AtomicInteger runs,
                                                              java.util.concurrent.atomic.AtomicBoolean fixed,
                                                              java.util.List<Throwable> errors) {
        return SagaDefinition.builder("order-saga", Data.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    runs.incrementAndGet();
                    if (fixed.get()) {
                        return d;
                    }
                    IllegalStateException error = new IllegalStateException("carrier down");
                    errors.add(error);
                    throw error;
                }).retry(RetryPolicy.NONE)
                .build();
    }

    /**
     * On a store taking batches the retry's write (SAGA_RETRIED) goes with the start of the retried step, and is
     * written before the step's action runs: refused, the call did not happen, and nothing ran.
     */
    @Test
    void aRetryOfARetriableStepWhoseWriteABatchingStoreRefusesRunsNothingAndFailsItsStageWithTheRefusal() {
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        BatchingRefusingStore store = new BatchingRefusingStore(TransitionType.SAGA_RETRIED);
        SagaOrchestrator orchestrator = started(store, shippingAfterThePivot(runs,
                new java.util.concurrent.atomic.AtomicBoolean(), new java.util.concurrent.CopyOnWriteArrayList<>()));
        SagaInstance before = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, before.status());

        assertSame(store.refusal, refusalOf(() -> orchestrator.retryCompensation("saga-1")));

        assertEquals(1, runs.get(), "the step's action ran for a call that did not happen");
        assertEquals(before, store.find("saga-1").orElseThrow());
        orchestrator.close();
    }

    /**
     * On a store taking batches, a refusal of the write of the retried step's outcome (its action ran: the call's own
     * write, with the step's start, was stored before) is one of the saga's progress: the call was made, its stage
     * completes with the saga needing attention, the refusal keeping the step's error, and a further retry goes on.
     */
    @Test
    void aRetryOfARetriableStepWhoseFailureABatchingStoreRefusesIsMadeAndKeepsTheStepsError() {
        java.util.concurrent.atomic.AtomicInteger runs = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicBoolean fixed = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.List<Throwable> errors = new java.util.concurrent.CopyOnWriteArrayList<>();
        BatchingRefusingStore store = new BatchingRefusingStore(TransitionType.STEP_FAILED) {
            @Override
            public void updateAll(SagaInstance updated, java.util.List<SagaTransition> transitions) {
                if (runs.get() == 1) { // the first failure is stored: the saga needs attention
                    delegate.updateAll(updated, transitions);
                } else {
                    super.updateAll(updated, transitions);
                }
            }
        };
        SagaOrchestrator orchestrator = started(store, shippingAfterThePivot(runs, fixed, errors));

        SagaResult<?> retried = orchestrator.retryCompensation("saga-1").toCompletableFuture().join();

        assertEquals(2, runs.get());
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, retried.outcome(), retried.toString());
        assertSame(store.refusal, retried.exception());
        assertTrue(java.util.List.of(store.refusal.getSuppressed()).contains(errors.get(1)),
                "the retried step's error is lost: " + java.util.Arrays.toString(store.refusal.getSuppressed()));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        fixed.set(true);
        assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("saga-1").toCompletableFuture().join().outcome());
        assertEquals(3, runs.get());
        orchestrator.close();
    }

    /**
     * A cancel of a saga this orchestrator drives, whose write the store refuses, did not happen: the run goes on as if
     * it had not been made. It stopped before, as for a write it lost, though no other orchestrator drives the saga: the
     * start's caller got the operator's refusal as the saga's outcome, the action in flight was dropped when it completed,
     * and the saga stayed running, driven by nobody, until a recover() ran that action again.
     */
    @Test
    void aRefusedCancelOfASagaDrivenHereLeavesItsRunGoingOnToItsOwnOutcome() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_COMPENSATING);
        CompletableFuture<Data> charge = new CompletableFuture<>();
        java.util.concurrent.atomic.AtomicInteger charges = new java.util.concurrent.atomic.AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").asyncAction((d, ctx) -> {
                    charges.incrementAndGet();
                    return charge;
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .build();
        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();

        assertSame(store.refusal, assertThrows(ConfigurationException.class, () -> orchestrator.cancel("saga-1")));

        assertTrue(!result.isDone(), () -> "the saga's outcome is the refused call's: " + result);
        charge.complete(new Data("charged"));
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome(), "driven on here, without a recover()");
        assertEquals(new Data("charged"), result.join().data());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, charges.get(), "the charge ran once");
        orchestrator.close();
    }

    /**
     * A listener's markResolved from onFailed, whose write the store refuses, did not happen: the run finishes needing
     * attention as the saga is stored, its result saying so. It stopped before, its result the operator's refusal, as if
     * the saga had not reached its end.
     */
    @Test
    void aRefusedMarkResolvedFromAListenerLeavesTheRunToFinishNeedingAttentionAsStored() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_RESOLVED);
        java.util.concurrent.atomic.AtomicReference<SagaOrchestrator> self = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicReference<RuntimeException> refused = new java.util.concurrent.atomic.AtomicReference<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(needingAttention).listener(new io.streamsaga.saga.SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        refused.set(assertThrows(RuntimeException.class, () -> self.get().markResolved(instance.sagaId())));
                    }
                })
                .build();
        self.set(orchestrator);

        SagaResult<Data> result = orchestrator.start(needingAttention, "saga-1", null, new Data("a")).toCompletableFuture()
                .join();

        assertSame(store.refusal, refused.get());
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome(), result.toString());
        assertEquals("warehouse down", result.compensationFailure().message());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION,
                orchestrator.result("saga-1").toCompletableFuture().join().outcome(), "as stored, the run finished");
        orchestrator.close();
    }

    /**
     * A listener's retryCompensation from onFailed, whose write the store refuses, gets a stage failed with the refusal,
     * not the run's result; the run finishes needing attention as stored, its result saying so.
     */
    @Test
    void aRefusedRetryFromAListenerFailsItsStageWithTheRefusalAndTheRunFinishesNeedingAttentionAsStored() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_RETRIED);
        java.util.concurrent.atomic.AtomicReference<SagaOrchestrator> self = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicReference<java.util.concurrent.CompletionStage<SagaResult<Object>>> retried =
                new java.util.concurrent.atomic.AtomicReference<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(needingAttention).listener(new io.streamsaga.saga.SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        retried.set(self.get().retryCompensation(instance.sagaId()));
                    }
                })
                .build();
        self.set(orchestrator);

        SagaResult<Data> result = orchestrator.start(needingAttention, "saga-1", null, new Data("a")).toCompletableFuture()
                .join();

        assertSame(store.refusal, refusalOf(retried::get));
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome(), result.toString());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }

    /**
     * A refused cancel puts the run back as it was and lets it go on within the call: when that drive meets a listener's
     * operator call before the cancel returns (a retry falling due at the call's instant, its timer not run yet, fails
     * for good, and onFailed resolves the saga), the cancel still throws its refusal. The listener's call, beginning,
     * cleared the refusal the cancel was to throw, and the cancel returned as if it had cancelled.
     */
    @Test
    void aRefusedCancelThrowsTheRefusalAlsoWhenTheRunGoingOnMeetsAListenersOperatorCallFirst() {
        RefusingStore store = new RefusingStore(TransitionType.SAGA_COMPENSATING);
        java.util.concurrent.atomic.AtomicReference<SagaOrchestrator> self = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicInteger resolves = new java.util.concurrent.atomic.AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(java.time.Duration.ofSeconds(1)).jitter(0)
                        .build())
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .listener(new io.streamsaga.saga.SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        resolves.incrementAndGet();
                        self.get().markResolved(instance.sagaId());
                    }
                })
                .build();
        self.set(orchestrator);
        // Scheduled before the charge's retry, at the same instant: it runs first, the retry due and its timer not run.
        java.util.concurrent.atomic.AtomicReference<Throwable> cancel = new java.util.concurrent.atomic.AtomicReference<>();
        scheduler.schedule(java.time.Duration.ofSeconds(1), () -> {
            try {
                orchestrator.cancel("saga-1");
                cancel.set(new AssertionError("the cancel returned as if it had cancelled"));
            } catch (RuntimeException e) {
                cancel.set(e);
            }
        });
        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();
        assertTrue(!result.isDone());

        scheduler.advance(java.time.Duration.ofSeconds(1));

        assertEquals(1, resolves.get(), "the listener's call was made while the cancel went on");
        assertSame(store.refusal, cancel.get());
        assertTrue(store.history("saga-1").stream().noneMatch(t -> "cancelled".equals(t.detail())));
        orchestrator.close();
    }
}
