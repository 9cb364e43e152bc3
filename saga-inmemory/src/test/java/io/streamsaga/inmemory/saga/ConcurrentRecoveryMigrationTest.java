package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.RecoveryReport;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RecoveryReport.unresolvable: "unfinished sagas whose definition ... is not registered and cannot be
 * migrated". Two recover() calls at once that both migrate a saga: the one whose migration loses the race
 * still resumes the saga the other migrated, and does not report it as unresolvable. One whose race another node won
 * and moved on (finished there) logs that at INFO, as a run whose write lost to another node does: two nodes
 * recovering at once is normal operation.
 */
class ConcurrentRecoveryMigrationTest {
    record DataV1(String id) {
    }

    record DataV2(String id, String currency) {
    }

    /** Both recover() calls are about to store their migration before either does. */
    private static final class BarrierStore extends ForwardingSagaStore {
        private final CyclicBarrier barrier = new CyclicBarrier(2);

        BarrierStore(SagaStore delegate) {
            super(delegate);
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.SAGA_MIGRATED) {
                try {
                    barrier.await(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
            delegate.update(updated, transition);
        }
    }

    /** Saga saga-1 started under version 1 of pay-saga, whose process then died with its first step in flight. */
    private static void startedUnderVersionOne(SagaStore store, VirtualScheduler scheduler) {
        SagaDefinition<DataV1> v1 = SagaDefinition.builder("pay-saga", DataV1.class).dataType("pay-data")
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<DataV1>()) // the process dies meanwhile
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        first.start(v1, "saga-1", null, new DataV1("a"));
        first.close();
    }

    /** An orchestrator that registers only version 2 of pay-saga, with an upcaster from version 1. */
    private static SagaOrchestrator versionTwo(SagaStore store, VirtualScheduler scheduler) {
        SagaDefinition<DataV2> v2 = SagaDefinition.builder("pay-saga", DataV2.class).version(2).dataType("pay-data")
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<DataV2>())
                .build();
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("pay-saga", 1, data -> data.put("currency", "USD")).build();
    }

    @Test
    void twoRecoveriesAtOnceBothReportTheSagaEitherMigratedAsResumed() throws Exception {
        VirtualScheduler scheduler = new VirtualScheduler();
        BarrierStore store = new BarrierStore(new InMemorySagaStore());
        startedUnderVersionOne(store, scheduler);
        SagaOrchestrator second = versionTwo(store, scheduler);

        CompletableFuture<RecoveryReport> one = CompletableFuture.supplyAsync(second::recover);
        CompletableFuture<RecoveryReport> other = CompletableFuture.supplyAsync(second::recover);

        RecoveryReport a = one.get(10, TimeUnit.SECONDS);
        RecoveryReport b = other.get(10, TimeUnit.SECONDS);
        assertEquals(List.of("saga-1"), a.resumed(), a.toString());
        assertEquals(List.of("saga-1"), b.resumed(), b.toString());
        assertEquals(2, store.find("saga-1").orElseThrow().definitionVersion());
        second.close();
    }

    @Test
    void aMigrationThatLostToAnotherNodeWhichFinishedTheSagaIsLoggedOnceAtInfoNotAsAWarning() throws Throwable {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore memory = new InMemorySagaStore();
        // Another node migrates the saga and drives it to its end just before this node's migration is written.
        SagaStore store = new ForwardingSagaStore(memory) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_MIGRATED) {
                    SagaInstance done = new SagaInstance(updated.sagaId(), updated.sagaName(), 2, updated.businessKey(),
                            updated.dataType(), updated.data(), SagaStatus.COMPLETED, updated.steps(), null, null,
                            updated.createdAt(), updated.updatedAt(), updated.version(), "node-b");
                    delegate.update(done, new SagaTransition(updated.sagaId(), updated.version(), updated.updatedAt(),
                            TransitionType.SAGA_COMPLETED, null, 0, null));
                }
                delegate.update(updated, transition);
            }
        };
        startedUnderVersionOne(memory, scheduler);
        SagaOrchestrator second = versionTwo(store, scheduler);

        AtomicReference<RecoveryReport> report = new AtomicReference<>();
        String log = CapturedLog.ofThisThread(() -> report.set(second.recover()));

        assertEquals(SagaStatus.COMPLETED, memory.find("saga-1").orElseThrow().status());
        assertEquals(List.of("saga-1"), report.get().unresolvable(), report.get().toString());
        assertTrue(report.get().unresolvableReasons().get("saga-1").startsWith("another orchestrator migrated it first"),
                report.get().toString());
        List<String> entries = log.lines().filter(line -> line.contains("saga-1")).toList();
        assertEquals(1, entries.size(), log);
        assertTrue(entries.get(0).contains("] INFO "), entries.get(0));
        assertTrue(entries.get(0).contains("saga saga-1: migrated concurrently by another node (owner node-b): stored"
                + " COMPLETED at version 2 (definition version 2); not resumed here"), entries.get(0));
        assertFalse(log.contains(" WARN "), log);
        second.close();
    }
}
