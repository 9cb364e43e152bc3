package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Proxy;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With a store that takes transition batches, the engine writes the transitions between two acts in one
 * write, and still writes every transition before it acts on it.
 */
class TransitionBatchingTest {

    record Data(String id) {
    }

    private final List<String> seen = new ArrayList<>();

    /** What each action and compensation finds in the store when it runs, step 3 failing. */
    private static final List<String> STATES_SEEN_WHEN_STEP_THREE_FAILS = List.of(
            "one:[RUNNING, PENDING, PENDING]",
            "two:[SUCCEEDED, RUNNING, PENDING]",
            "three:[SUCCEEDED, SUCCEEDED, RUNNING]",
            "undo-two:[SUCCEEDED, COMPENSATING, FAILED]",
            "undo-one:[COMPENSATING, COMPENSATED, FAILED]");

    /** Three steps; each action and compensation records the step states the store holds when it runs. */
    private SagaDefinition<Data> definition(SagaStore store, boolean failAtThree) {
        return SagaDefinition.builder(failAtThree ? "three-failing" : "three", Data.class)
                .step("one").action((d, ctx) -> seenBy(store, ctx.sagaId(), "one")).compensation((d, ctx) -> seenBy(store, ctx.sagaId(), "undo-one"))
                .step("two").action((d, ctx) -> seenBy(store, ctx.sagaId(), "two")).compensation((d, ctx) -> seenBy(store, ctx.sagaId(), "undo-two"))
                .step("three").action((d, ctx) -> {
                    seenBy(store, ctx.sagaId(), "three");
                    if (failAtThree) {
                        throw new IllegalStateException("declined");
                    }
                    return d;
                }).compensation((d, ctx) -> seenBy(store, ctx.sagaId(), "undo-three"))
                .build();
    }

    private Data seenBy(SagaStore store, String sagaId, String who) {
        SagaInstance stored = store.find(sagaId).orElseThrow();
        seen.add(who + ":" + stored.steps().stream().map(s -> s.status().name()).toList());
        return new Data(who);
    }

    private static SagaOrchestrator orchestrator(SagaStore store, SagaListener... listeners) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler(Instant.EPOCH));
        for (SagaListener listener : listeners) {
            builder.listener(listener);
        }
        return builder.build();
    }

    @Test
    void eachActionAndCompensationRunsAfterItsOwnStartIsStored() {
        InMemorySagaStore store = new InMemorySagaStore();
        try (SagaOrchestrator orchestrator = orchestrator(store)) {
            SagaResult<Data> result = orchestrator.start(definition(store, true), new Data("x")).toCompletableFuture().join();
            assertTrue(result.isCompensated());
        }
        assertEquals(STATES_SEEN_WHEN_STEP_THREE_FAILS, seen);
    }

    @Test
    void aThreeStepSagaTakesFourWritesAndItsCompensationSix() {
        CrashingSagaStore counting = new CrashingSagaStore(new InMemorySagaStore(), 0);
        try (SagaOrchestrator orchestrator = orchestrator(counting)) {
            SagaResult<Data> completed = orchestrator.start(definition(counting, false), new Data("x")).toCompletableFuture().join();
            assertTrue(completed.isCompleted());
            assertEquals(4, counting.writes());
            List<SagaTransition> history = orchestrator.history(completed.sagaId());
            assertEquals(List.of(TransitionType.SAGA_STARTED, TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                    TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED, TransitionType.STEP_STARTED,
                    TransitionType.STEP_SUCCEEDED, TransitionType.SAGA_COMPLETED),
                    history.stream().map(SagaTransition::type).toList());
            assertEquals(List.of(1L, 1L, 2L, 2L, 3L, 3L, 4L, 4L), history.stream().map(SagaTransition::version).toList());

            SagaResult<Data> compensated = orchestrator.start(definition(counting, true), new Data("y")).toCompletableFuture().join();
            assertTrue(compensated.isCompensated());
            assertEquals(4 + 6, counting.writes());
            assertEquals(13, orchestrator.history(compensated.sagaId()).size());
        }
    }

    @Test
    void aStoreWithoutBatchesGetsOneWritePerTransition() {
        CrashingSagaStore counting = new CrashingSagaStore(oneAtATime(new InMemorySagaStore()), 0);
        try (SagaOrchestrator orchestrator = orchestrator(counting)) {
            SagaResult<Data> completed = orchestrator.start(definition(counting, false), new Data("x")).toCompletableFuture().join();
            assertTrue(completed.isCompleted());
            assertEquals(8, counting.writes());
            assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L),
                    orchestrator.history(completed.sagaId()).stream().map(SagaTransition::version).toList());
        }
    }

    @Test
    void listenersHearOfATransitionOnlyAfterItIsStored() {
        InMemorySagaStore store = new InMemorySagaStore();
        List<String> heard = new ArrayList<>();
        SagaListener listener = new SagaListener() {
            @Override
            public void onStarted(SagaInstance instance) {
                heard.add("started:" + store.find(instance.sagaId()).orElseThrow().status());
            }

            @Override
            public void onStepCompleted(SagaInstance instance, String step) {
                heard.add(step + ":" + store.find(instance.sagaId()).orElseThrow().step(step).orElseThrow().status());
            }

            @Override
            public void onCompleted(SagaInstance instance) {
                heard.add("completed:" + store.find(instance.sagaId()).orElseThrow().status());
            }
        };
        try (SagaOrchestrator orchestrator = orchestrator(store, listener)) {
            assertTrue(orchestrator.start(definition(store, false), new Data("x")).toCompletableFuture().join().isCompleted());
        }
        assertEquals(List.of("started:" + SagaStatus.RUNNING, "one:" + StepStatus.SUCCEEDED, "two:" + StepStatus.SUCCEEDED,
                "three:" + StepStatus.SUCCEEDED, "completed:" + SagaStatus.COMPLETED), heard);
    }

    @Test
    void aDuplicateSagaIdFailsTheSecondStartAndLeavesTheFirstAlone() {
        InMemorySagaStore store = new InMemorySagaStore();
        try (SagaOrchestrator orchestrator = orchestrator(store)) {
            SagaDefinition<Data> definition = definition(store, false);
            assertTrue(orchestrator.start(definition, "saga-1", null, new Data("x")).toCompletableFuture().join().isCompleted());
            var second = orchestrator.start(definition, "saga-1", null, new Data("y")).toCompletableFuture();
            assertTrue(second.isCompletedExceptionally());
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(8, store.history("saga-1").size());
            assertFalse(seen.isEmpty());
        }
    }

    @Test
    void aStoreWithoutHistoryIsGivenNoTransitionsAndStillSeesEveryStateBeforeTheEngineActs() {
        InMemorySagaStore store = new InMemorySagaStore(false, true);
        assertFalse(store.keepsHistory());
        try (SagaOrchestrator orchestrator = orchestrator(store)) {
            SagaResult<Data> compensated = orchestrator.start(definition(store, true), new Data("x")).toCompletableFuture().join();
            assertTrue(compensated.isCompensated());
            assertEquals(SagaStatus.COMPENSATED, store.find(compensated.sagaId()).orElseThrow().status());
            assertTrue(store.history(compensated.sagaId()).isEmpty());
        }
        assertEquals(STATES_SEEN_WHEN_STEP_THREE_FAILS, seen);
    }

    /** The store seen through the SPI's defaults for batches: one transition per write. */
    private static SagaStore oneAtATime(SagaStore delegate) {
        return (SagaStore) Proxy.newProxyInstance(SagaStore.class.getClassLoader(), new Class<?>[]{SagaStore.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("writesTransitionBatches")) {
                        return false;
                    }
                    if (method.isDefault() && (method.getName().equals("insertAll") || method.getName().equals("updateAll"))) {
                        return java.lang.reflect.InvocationHandler.invokeDefault(proxy, method, args);
                    }
                    try {
                        return method.invoke(delegate, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
