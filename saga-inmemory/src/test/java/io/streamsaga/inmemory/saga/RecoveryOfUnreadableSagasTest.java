package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** One saga that cannot be migrated does not keep recover() from resuming the others. */
class RecoveryOfUnreadableSagasTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();

    @Test
    void anUpcasterFailingForOneSagaLeavesItUnresolvableAndTheOthersAreResumed() {
        SagaDefinition<Data> v1 = SagaDefinition.builder("migrating-saga", Data.class).version(1)
                .step("wait").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // still running at the restart
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build();
        first.start(v1, "saga-a", null, new Data("bad"));
        first.start(v1, "saga-b", null, new Data("good"));
        first.close();

        SagaDefinition<Data> v2 = SagaDefinition.builder("migrating-saga", Data.class).version(2)
                .step("wait").action((d, ctx) -> d)
                .build();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("migrating-saga", 1, json -> {
                    if (json.get("id").asText().equals("bad")) {
                        throw new IllegalArgumentException("cannot upcast " + json);
                    }
                    return json;
                })
                .build();
        SagaOrchestrator.RecoveryReport recovery = second.recover();

        assertEquals(List.of("saga-b"), recovery.resumed());
        assertEquals(List.of("saga-a"), recovery.unresolvable());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-b").orElseThrow().status());
        assertEquals(1, store.find("saga-a").orElseThrow().definitionVersion()); // left untouched
        second.close();
    }
}
