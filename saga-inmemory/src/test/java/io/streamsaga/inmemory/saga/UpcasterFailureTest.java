package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDataUpcaster;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An upcaster that cannot migrate a saga's data (it throws, or returns no tree) leaves that saga in the store
 * untouched and reported unresolvable, and the recovery goes on with the others (docs/sagas.md, Versions).
 */
class UpcasterFailureTest {
    record OrderV1(String id) {
    }

    record OrderV2(String id, String currency) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> shipped = new CopyOnWriteArrayList<>();

    private void startTwoSagasUnderVersionOne() {
        SagaDefinition<OrderV1> v1 = SagaDefinition.builder("order", OrderV1.class).dataType("order-data")
                .step("pay").action((d, ctx) -> d)
                .step("ship").asyncAction((d, ctx) -> new CompletableFuture<>()) // still shipping at the upgrade
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        first.start(v1, "bad", null, new OrderV1("o-bad"));
        first.start(v1, "good", null, new OrderV1("o-good"));
        first.close();
    }

    private SagaOrchestrator.RecoveryReport recoverUnderVersionTwo(SagaDataUpcaster upcaster) {
        SagaDefinition<OrderV2> v2 = SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                .step("pay").action((d, ctx) -> d)
                .step("ship").action((d, ctx) -> {
                    shipped.add(d.id() + " in " + d.currency());
                    return d;
                })
                .build();
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("order", 1, upcaster).build().recover();
    }

    @Test
    void anUpcasterThatThrowsLeavesItsSagaUntouchedAndTheOthersAreMigrated() {
        startTwoSagasUnderVersionOne();
        long version = store.find("bad").orElseThrow().version();

        SagaOrchestrator.RecoveryReport report = recoverUnderVersionTwo(data -> {
            if (data.get("id").asText().equals("o-bad")) {
                throw new IllegalStateException("cannot migrate");
            }
            return data.put("currency", "EUR");
        });

        assertEquals(List.of("bad"), report.unresolvable());
        assertEquals(List.of("good"), report.resumed());
        assertEquals(version, store.find("bad").orElseThrow().version());
        assertEquals(1, store.find("bad").orElseThrow().definitionVersion());
        assertEquals(SagaStatus.COMPLETED, store.find("good").orElseThrow().status());
        assertEquals(List.of("o-good in EUR"), shipped);
    }

    @Test
    void anUpcasterThatReturnsNoTreeLeavesItsSagaUntouchedInsteadOfMigratingItWithoutData() {
        startTwoSagasUnderVersionOne();
        long version = store.find("bad").orElseThrow().version();

        SagaOrchestrator.RecoveryReport report = recoverUnderVersionTwo(
                data -> data.get("id").asText().equals("o-bad") ? null : data.put("currency", "EUR"));

        assertEquals(List.of("bad"), report.unresolvable());
        assertEquals(List.of("good"), report.resumed());
        assertEquals(version, store.find("bad").orElseThrow().version(), "the saga was migrated without data");
        assertEquals(new OrderV1("o-bad"), store.find("bad").orElseThrow().data());
        assertEquals(List.of("o-good in EUR"), shipped);
    }
}
