package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A saga past its pivot cannot go back (docs/sagas.md, Step roles). A new version that adds a compensatable step
 * before the pivot would have that step run after the pivot succeeded, and its failure compensate the steps the pivot
 * made final: such a saga is not migrated (unresolvable, left as it was), as one whose started step the new version
 * no longer has.
 */
class MigrationPastThePivotTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> effects = new CopyOnWriteArrayList<>();

    @Test
    void aSagaPastItsPivotIsNotMigratedToAVersionThatAddsACompensatableStepItWouldRunAfterThePivot() {
        SagaDefinition<Order> v1 = SagaDefinition.builder("order-saga", Order.class).version(1).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> effects.add("release"))
                .pivot("charge").action((o, ctx) -> {
                    effects.add("charge");
                    return o;
                })
                .retriable("ship").action((o, ctx) -> {
                    throw new IllegalStateException("carrier down");
                }).retry(RetryPolicy.builder().maxAttempts(10).initialBackoff(Duration.ofMinutes(5)).jitter(0).build())
                .build();
        SagaOrchestrator old = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        old.start(v1, "o-1", null, new Order("o-1"));
        old.close(); // charged, shipping waits for its retry when v2 is deployed
        long version = store.find("o-1").orElseThrow().version();

        SagaDefinition<Order> v2 = SagaDefinition.builder("order-saga", Order.class).version(2).dataType("order")
                .step("reserve").action((o, ctx) -> o).compensation((o, ctx) -> effects.add("release"))
                .step("check-fraud").action((o, ctx) -> {
                    effects.add("check-fraud");
                    throw new IllegalStateException("flagged");
                }).compensation((o, ctx) -> effects.add("undo check-fraud"))
                .pivot("charge").action((o, ctx) -> o)
                .retriable("ship").action((o, ctx) -> o)
                .build();
        SagaOrchestrator next = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("order-saga", 1, json -> json).build();
        SagaOrchestrator.RecoveryReport report = next.recover();
        scheduler.advance(Duration.ofHours(1));

        assertEquals(List.of("charge"), effects, "the reservation of a charged order was released");
        assertEquals(List.of("o-1"), report.unresolvable());
        assertEquals(SagaStatus.RUNNING, store.find("o-1").orElseThrow().status());
        assertEquals(version, store.find("o-1").orElseThrow().version());
        next.close();
    }
}
