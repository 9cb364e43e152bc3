package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator call on a saga whose definition version is gone migrates it as recover() would, and is refused with a
 * SagaException that says why the saga cannot be migrated (docs/sagas.md: "A call the saga's state does not allow is
 * refused with a SagaException and changes nothing"), whatever stops the migration: an upcaster that throws, or a
 * saga past its pivot that the new version would give a compensatable step to run after the pivot.
 */
class OperatorCallOnASagaThatCannotBeMigratedTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();

    /** v1: the pivot charged, shipping exhausted its retries, the saga needs attention. */
    private long needingAttentionPastThePivot() {
        SagaDefinition<Order> v1 = SagaDefinition.builder("order-saga", Order.class).version(1).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> { })
                .pivot("charge").action((o, ctx) -> o)
                .retriable("ship").action((o, ctx) -> {
                    throw new IllegalStateException("carrier down");
                }).retry(RetryPolicy.builder().maxAttempts(1).build())
                .build();
        try (SagaOrchestrator old = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build()) {
            old.start(v1, "o-1", null, new Order("o-1"));
        }
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("o-1").orElseThrow().status());
        return store.find("o-1").orElseThrow().version();
    }

    @Test
    void anOperatorCallOnASagaWhoseUpcasterThrowsIsRefusedWithASagaExceptionCarryingTheUpcastersError() {
        long version = needingAttentionPastThePivot();
        SagaDefinition<Order> v2 = SagaDefinition.builder("order-saga", Order.class).version(2).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> { })
                .pivot("charge").action((o, ctx) -> o)
                .retriable("ship").action((o, ctx) -> o)
                .build();
        IllegalArgumentException broken = new IllegalArgumentException("no field 'id'");
        try (SagaOrchestrator next = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("order-saga", 1, json -> {
                    throw broken;
                }).build()) {
            SagaException refused = assertThrows(SagaException.class, () -> next.markResolved("o-1"));
            assertSame(broken, refused.getCause(), refused.toString());
            assertTrue(refused.getMessage().contains("upcaster"), refused.getMessage());
        }
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("o-1").orElseThrow().status());
        assertEquals(version, store.find("o-1").orElseThrow().version());
    }

    @Test
    void anOperatorCallOnASagaPastItsPivotThatTheNewVersionCannotTakeSaysSoRatherThanThatNoUpcasterMigratesIt() {
        long version = needingAttentionPastThePivot();
        SagaDefinition<Order> v2 = SagaDefinition.builder("order-saga", Order.class).version(2).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> { })
                .step("check-fraud").action((o, ctx) -> o).compensation((o, ctx) -> { })
                .pivot("charge").action((o, ctx) -> o)
                .retriable("ship").action((o, ctx) -> o)
                .build();
        try (SagaOrchestrator next = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("order-saga", 1, json -> json).build()) {
            SagaException refused = assertThrows(SagaException.class, () -> next.markResolved("o-1"));
            assertTrue(refused.getMessage().contains("past its pivot"), refused.getMessage());
            assertTrue(refused.getMessage().contains("check-fraud"), refused.getMessage());
            assertFalse(refused.getMessage().contains("no upcaster"), refused.getMessage());
        }
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("o-1").orElseThrow().status());
        assertEquals(version, store.find("o-1").orElseThrow().version());
    }
}
