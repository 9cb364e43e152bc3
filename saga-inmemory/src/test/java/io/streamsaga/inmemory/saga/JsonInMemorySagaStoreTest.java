package io.streamsaga.inmemory.saga;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaStoreContractTest;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The contract again, with the saga data kept as JSON like a durable store keeps it. */
class JsonInMemorySagaStoreTest extends SagaStoreContractTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @Override
    protected SagaStore createStore() {
        return InMemorySagaStore.serializingJson(JsonEventCodec.defaultMapper());
    }

    /** Saga data whose accessor fails, so that no mapper can write it. */
    public record Unwritable(String value) {
        @Override
        public String value() {
            throw new IllegalStateException("no value");
        }
    }

    /**
     * Saga data a durable store refuses as data that cannot be written as JSON that reads back (JdbcSagaStore: a map
     * key holding a lone surrogate, which JSON reads back in a value but not in a name; data the mapper cannot write at
     * all) is refused alike by the store that keeps data as JSON, with a ConfigurationException and nothing stored, on
     * an insert, an update and an update of a saga it does not hold (not taken for a conflict); a lone surrogate in a
     * value and a well-formed pair in a key are kept. It took the first and threw the mapper's IllegalArgumentException
     * for the second, so a test on it passed, or failed otherwise, where production refuses the write.
     */
    @Test
    void sagaDataADurableStoreCannotWriteAsJsonThatReadsBackIsRefusedAlikeWithNothingStored() {
        SagaInstance ok = withData(instance("s-1", null, SagaStatus.RUNNING, T0, 1), Map.of("item-\uD83D\uDE00", "v-\uD800"));
        store.insert(ok, started(ok));
        JsonNode kept = (JsonNode) store.find("s-1").orElseThrow().data();
        assertEquals("v-\uD800", kept.get("item-\uD83D\uDE00").asText());

        List<Object> refused = List.of(Map.of("item-\uD800", 1), Map.of("\uDC00", 1),
                Map.of("outer", List.of(Map.of("inner-\uD800", 1))), new Unwritable("x"));
        for (Object data : refused) {
            SagaInstance inserted = withData(instance("s-2", null, SagaStatus.RUNNING, T0, 1), data);
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> store.insert(inserted,
                    started(inserted)), data.toString());
            assertTrue(e.getMessage().contains("cannot be written as JSON"), e.getMessage());
            SagaInstance updated = withData(instance("s-1", null, SagaStatus.RUNNING, T0, 2), data);
            assertThrows(ConfigurationException.class, () -> store.update(updated, started(updated)), data.toString());
            SagaInstance ghost = withData(instance("ghost", null, SagaStatus.RUNNING, T0, 2), data);
            assertThrows(ConfigurationException.class, () -> store.update(ghost, started(ghost)), data.toString());
        }
        assertTrue(store.find("s-2").isEmpty(), "a refused insert stores nothing");
        assertEquals(1, store.find("s-1").orElseThrow().version(), "a refused update changes nothing");
        SagaInstance ghost = withData(instance("ghost", null, SagaStatus.RUNNING, T0, 2), Map.of("k", 1));
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.update(ghost, started(ghost)));
    }

    private static SagaTransition started(SagaInstance s) {
        return new SagaTransition(s.sagaId(), s.version(), s.updatedAt(), TransitionType.STEP_STARTED, null, 0, null);
    }

    private static SagaInstance withData(SagaInstance s, Object data) {
        return new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(), s.dataType(), data,
                s.status(), s.steps(), s.failure(), s.compensationFailure(), s.createdAt(), s.updatedAt(), s.version());
    }
}
