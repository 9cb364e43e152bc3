package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.RecoveryReport;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * RecoveryReport.unresolvable: "unfinished sagas whose definition ... is not registered and cannot be
 * migrated". Two recover() calls at once that both migrate a saga: the one whose migration loses the race
 * still resumes the saga the other migrated, and does not report it as unresolvable.
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

    @Test
    void twoRecoveriesAtOnceBothReportTheSagaEitherMigratedAsResumed() throws Exception {
        VirtualScheduler scheduler = new VirtualScheduler();
        BarrierStore store = new BarrierStore(new InMemorySagaStore());
        SagaDefinition<DataV1> v1 = SagaDefinition.builder("pay-saga", DataV1.class).dataType("pay-data")
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<DataV1>()) // the process dies meanwhile
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        first.start(v1, "saga-1", null, new DataV1("a"));
        first.close();

        SagaDefinition<DataV2> v2 = SagaDefinition.builder("pay-saga", DataV2.class).version(2).dataType("pay-data")
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<DataV2>())
                .build();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("pay-saga", 1, data -> data.put("currency", "USD")).build();

        CompletableFuture<RecoveryReport> one = CompletableFuture.supplyAsync(second::recover);
        CompletableFuture<RecoveryReport> other = CompletableFuture.supplyAsync(second::recover);

        RecoveryReport a = one.get(10, TimeUnit.SECONDS);
        RecoveryReport b = other.get(10, TimeUnit.SECONDS);
        assertEquals(List.of("saga-1"), a.resumed(), a.toString());
        assertEquals(List.of("saga-1"), b.resumed(), b.toString());
        assertEquals(2, store.find("saga-1").orElseThrow().definitionVersion());
        second.close();
    }
}
