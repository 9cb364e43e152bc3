package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * Two operator calls on two orchestrators migrate the same saga of a retired version at once (SagaOrchestrator.markResolved):
 * one wins, the other fails with a ConcurrentSagaUpdateException and writes nothing, the saga is migrated once.
 */
class OperatorCallMigrationRaceTest {
    record DataV1(String id) {
    }

    record DataV2(String id, String currency) {
    }

    private static final class BarrierStore extends ForwardingSagaStore {
        final CyclicBarrier barrier = new CyclicBarrier(2);
        volatile boolean armed;

        BarrierStore(SagaStore delegate) {
            super(delegate);
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (armed && transition.type() == TransitionType.SAGA_MIGRATED) {
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
    void theLoserSeesAConcurrentUpdateAndChangesNothing() throws Exception {
        VirtualScheduler scheduler = new VirtualScheduler();
        BarrierStore store = new BarrierStore(new InMemorySagaStore());
        SagaDefinition<DataV1> v1 = SagaDefinition.builder("pay", DataV1.class).dataType("pay-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    throw new IllegalStateException("down");
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        first.start(v1, "saga-1", null, new DataV1("a"));
        first.close();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        SagaDefinition<DataV2> v2 = SagaDefinition.builder("pay", DataV2.class).version(2).dataType("pay-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> d)
                .build();
        SagaOrchestrator a = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("pay", 1, data -> data.put("currency", "USD")).build();
        SagaOrchestrator b = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("pay", 1, data -> data.put("currency", "EUR")).build();
        store.armed = true;
        CompletableFuture<Object> resolve = CompletableFuture.runAsync(() -> a.markResolved("saga-1")).thenApply(x -> "resolved");
        CompletableFuture<Object> retry = CompletableFuture.supplyAsync(() -> b.retryCompensation("saga-1"));
        int failures = 0;
        for (CompletableFuture<Object> call : java.util.List.of(resolve, retry)) {
            try {
                call.get(10, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                failures++;
                assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause(), e.toString());
            }
        }
        assertEquals(1, failures);
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(2, stored.definitionVersion());
        assertEquals(1, store.history("saga-1").stream().filter(t -> t.type() == TransitionType.SAGA_MIGRATED).count());
        a.close();
        b.close();
    }
}
