package io.streamsaga.jdbc;

import io.streamsaga.jdbc.claimcheck.JdbcPayloadStore;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Schema version 7 over a database at version 6 holding data: the sagas and payloads stored before are kept (a
 * saga gets no owner), and the new columns and table work; subclasses pick the engine.
 */
abstract class SchemaV7MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final String PAYLOAD_ID = "sha256-" + "a".repeat(64);

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void migratingFromVersion6KeepsSagasAndPayloadsAndAddsOwnershipAndWiderHolders() throws Exception {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(6, schema.migrate(6));
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = c.prepareStatement("INSERT INTO ss_saga (saga_id, saga_name, definition_version,"
                     + " business_key, data_type, data, status, steps, created_at, updated_at, version)"
                     + " VALUES ('s-1', 'order-saga', 1, 'order-1', 'order-data', ?, 'RUNNING', ?, ?, ?, 3)")) {
            ps.setBytes(1, "{\"orderId\":\"o-1\"}".getBytes(StandardCharsets.UTF_8));
            ps.setBytes(2, ("[{\"name\":\"create-order\",\"status\":\"WAITING\",\"attempts\":1,"
                    + "\"compensationAttempts\":0,\"dueAt\":null}]").getBytes(StandardCharsets.UTF_8));
            ps.setTimestamp(3, Timestamp.from(T0));
            ps.setTimestamp(4, Timestamp.from(T0.plusSeconds(3)));
            ps.executeUpdate();
        }
        // As the library of version 6 wrote them (its stores refuse to be built over a version-6 schema now).
        byte[] content = "payload".getBytes(StandardCharsets.UTF_8);
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement payload = c.prepareStatement("INSERT INTO ss_payload (id, content, stored_at) VALUES (?, ?, ?)");
             PreparedStatement holder = c.prepareStatement("INSERT INTO ss_payload_holder (id, holder) VALUES (?, ?)")) {
            payload.setString(1, PAYLOAD_ID);
            payload.setBytes(2, content);
            payload.setTimestamp(3, Timestamp.from(T0));
            payload.executeUpdate();
            holder.setString(1, PAYLOAD_ID);
            holder.setString(2, "h".repeat(200));
            holder.executeUpdate();
            holder.setString(2, "w".repeat(500));
            assertThrows(SQLException.class, holder::executeUpdate, "version 6 holds holders of up to 200 characters");
        }

        assertEquals(JdbcSchema.latestVersion(), schema.migrate());
        JdbcPayloadStore payloads = JdbcPayloadStore.create(db.database().dataSource());
        assertEquals(JdbcSchema.latestVersion(), schema.currentVersion());

        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        SagaInstance kept = store.find("s-1").orElseThrow();
        assertEquals("order-1", kept.businessKey());
        assertEquals(SagaStatus.RUNNING, kept.status());
        assertEquals(3, kept.version());
        assertEquals("o-1", ((com.fasterxml.jackson.databind.JsonNode) kept.data()).get("orderId").asText());
        assertNull(kept.owner(), "a saga stored before version 7 has no owner");
        SagaInstance adopted = new SagaInstance(kept.sagaId(), kept.sagaName(), kept.definitionVersion(),
                kept.businessKey(), kept.dataType(), kept.data(), kept.status(), kept.steps(), null, null,
                kept.createdAt(), T0.plusSeconds(60), 4, "node-b");
        store.update(adopted, TransitionType.STEP_WAITING, "create-order", 2, null);
        assertEquals("node-b", store.find("s-1").orElseThrow().owner());
        store.heartbeat("node-b", T0.plusSeconds(60));
        assertEquals(Map.of("node-b", T0.plusSeconds(60)), store.heartbeats());

        assertArrayEquals(content, payloads.get(PAYLOAD_ID).orElseThrow());
        payloads.put(PAYLOAD_ID, content, "w".repeat(500), T0.plusSeconds(1));
        payloads.release(PAYLOAD_ID, "h".repeat(200)); // the holder stored before version 7
        assertTrue(payloads.get(PAYLOAD_ID).isPresent(), "the 500-character holder still holds it");
    }
}
