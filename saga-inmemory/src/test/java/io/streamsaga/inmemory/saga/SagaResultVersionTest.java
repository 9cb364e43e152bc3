package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A {@link SagaResult} names the definition version its saga ended under ({@link SagaResult#definitionVersion()}),
 * whatever produced it: a run that completed, compensated or needs attention (also through a write the store refused),
 * a recovered run, {@code result(id)} of a finished saga, an operator call on a saga it migrated to a newer version.
 * The start that fell back to an older version: {@code VersionGuardTest}.
 */
class SagaResultVersionTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();

    @AfterEach
    void tearDown() {
        scheduler.close();
    }

    /** Version 3: reserve (compensation failing when asked), then charge, failing for an order id "declined". */
    private static SagaDefinition<Order> order(int version, boolean compensationFails) {
        return SagaDefinition.builder("order-saga", Order.class).version(version).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> {
                    if (compensationFails) {
                        throw new IllegalStateException("warehouse down");
                    }
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((o, ctx) -> {
                    if (o.id().startsWith("declined")) {
                        throw new IllegalStateException("card declined");
                    }
                    return o;
                })
                .build();
    }

    @Test
    void everyOutcomeOfARunNamesTheVersionItRanUnder() {
        SagaDefinition<Order> v3 = order(3, false);
        SagaDefinition<Order> v4 = order(4, true);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(v3).register(v4).build()) {
            SagaResult<Order> completed = orchestrator.start(v3, new Order("paid")).toCompletableFuture().join();
            SagaResult<Order> compensated = orchestrator.start(v3, new Order("declined-1")).toCompletableFuture().join();
            SagaResult<Order> attention = orchestrator.start(v4, new Order("declined-2")).toCompletableFuture().join();

            assertEquals(List.of(SagaOutcome.COMPLETED, SagaOutcome.COMPENSATED, SagaOutcome.FAILED_NEEDS_ATTENTION),
                    List.of(completed.outcome(), compensated.outcome(), attention.outcome()));
            assertEquals(List.of(3, 3, 4), List.of(completed.definitionVersion(), compensated.definitionVersion(),
                    attention.definitionVersion()));
            assertEquals(3, orchestrator.result(completed.sagaId()).toCompletableFuture().join().definitionVersion(),
                    "read from the store");
        }
    }

    @Test
    void aSagaLeftNeedingAttentionByAWriteTheStoreRefusedNamesItsVersion() {
        ForwardingSagaStore refusing = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.STEP_SUCCEEDED) {
                    throw new ConfigurationException("data of saga s-1 cannot be written as JSON");
                }
                delegate.update(updated, transition);
            }
        };
        SagaDefinition<Order> v3 = order(3, false);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(refusing).scheduler(scheduler)
                .register(v3).build()) {
            SagaResult<Order> result = orchestrator.start(v3, "s-1", null, new Order("o-1")).toCompletableFuture().join();

            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
            assertEquals(3, result.definitionVersion());
        }
    }

    @Test
    void aRecoveredRunNamesTheVersionTheSagaStartedUnderThoughANewerOneIsRegistered() {
        InMemorySagaStore store = new InMemorySagaStore();
        CompletableFuture<Order> never = new CompletableFuture<>();
        SagaDefinition<Order> v1 = SagaDefinition.builder("wait-saga", Order.class).version(1).dataType("order")
                .step("wait").asyncAction((o, ctx) -> never)
                .build();
        try (SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build()) {
            first.start(v1, "s-1", null, new Order("o-1")); // closed while its step runs
        }
        CompletableFuture<Order> answered = new CompletableFuture<>();
        SagaDefinition<Order> v1Again = SagaDefinition.builder("wait-saga", Order.class).version(1).dataType("order")
                .step("wait").asyncAction((o, ctx) -> answered)
                .build();
        SagaDefinition<Order> v2 = SagaDefinition.builder("wait-saga", Order.class).version(2).dataType("order")
                .step("wait").asyncAction((o, ctx) -> CompletableFuture.completedFuture(o))
                .build();
        try (SagaOrchestrator next = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1Again)
                .register(v2).build()) {
            assertEquals(List.of("s-1"), next.recover().resumed());
            // the recovered run's own result, asked for while it waits on its step (not read back from the store)
            CompletableFuture<SagaResult<Object>> pending = next.result("s-1").toCompletableFuture();
            assertFalse(pending.isDone(), "the recovered run waits on its step");
            answered.complete(new Order("o-1"));

            SagaResult<Object> result = pending.join();
            assertEquals(SagaOutcome.COMPLETED, result.outcome());
            assertEquals(1, result.definitionVersion());
        }
    }

    @Test
    void anOperatorCallOnASagaItMigratesNamesTheNewVersion() {
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Order> v1 = SagaDefinition.builder("ship-saga", Order.class).version(1).dataType("order")
                .retriable("ship").action((o, ctx) -> {
                    throw new IllegalStateException("carrier down");
                }).retry(RetryPolicy.builder().maxAttempts(1).build())
                .build();
        try (SagaOrchestrator old = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build()) {
            assertEquals(1, old.start(v1, "s-1", null, new Order("o-1")).toCompletableFuture().join()
                    .definitionVersion());
        }
        SagaDefinition<Order> v2 = SagaDefinition.builder("ship-saga", Order.class).version(2).dataType("order")
                .retriable("ship").action((o, ctx) -> o)
                .build();
        try (SagaOrchestrator next = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("ship-saga", 1, json -> json).build()) {
            SagaResult<Object> retried = next.retryCompensation("s-1").toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPLETED, retried.outcome());
            assertEquals(2, retried.definitionVersion(), "migrated to version 2 by the call");
        }
    }

    @Test
    void aResultBuiltWithoutAVersionNamesNoneAndANegativeOneIsRefused() {
        SagaResult<Order> built = new SagaResult<>("s-1", SagaOutcome.COMPLETED, new Order("o-1"), null, null, null);

        assertEquals(0, built.definitionVersion());
        assertFalse(built.cause().isPresent());
        assertThrows(ConfigurationException.class,
                () -> new SagaResult<>("s-1", SagaOutcome.COMPLETED, new Order("o-1"), null, null, null, -1));
    }
}
