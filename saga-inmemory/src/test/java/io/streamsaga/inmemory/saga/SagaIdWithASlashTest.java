package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * '/' separates the parts of idempotency keys and command message ids ({@code <sagaId>/<step>},
 * {@code <sagaId>/<step>/compensation}): saga {@code s/a}'s step {@code compensation} would get key
 * {@code s/a/compensation}, the key of the compensation of step {@code a} in saga {@code s}, so a participant
 * deduping by key takes one for a repeat of the other. An explicit saga id with a '/' is refused.
 */
class SagaIdWithASlashTest {
    record Data(String id) {
    }

    @Test
    void anExplicitSagaIdWithASlashIsRefusedBeforeAnythingRuns() {
        List<String> keys = new CopyOnWriteArrayList<>();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Data> definition = SagaDefinition.builder("slash-saga", Data.class)
                .step("compensation").action((d, ctx) -> {
                    keys.add(ctx.idempotencyKey());
                    return d;
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .register(definition).build();

        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> orchestrator.start(definition, "s/a", null, new Data("x")));
        assertEquals("saga 'slash-saga': the saga id must not contain '/', but was 's/a'", refused.getMessage());
        assertEquals(List.of(), keys);
        assertFalse(store.find("s/a").isPresent());

        // Generated ids, and explicit ids without '/', start as before.
        assertEquals(SagaOutcome.COMPLETED, orchestrator.start(definition, "s-a", null, new Data("x"))
                .toCompletableFuture().join().outcome());
        assertEquals(SagaOutcome.COMPLETED, orchestrator.start(definition, new Data("x")).toCompletableFuture().join().outcome());
        assertEquals("s-a/compensation", keys.get(0));
        orchestrator.close();
    }
}
