package io.streamsaga.jdbc;

import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.spi.NodeRegistry.NodeHeartbeat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Schema version 9 (the definitions a node advertises with its heartbeat) over a database at version 8 holding a
 * node's heartbeat: the node is read after the upgrade as one that advertises nothing (the start guard does not count
 * it), its next heartbeat advertises, and a heartbeat as the earlier release writes it still works on version 9;
 * subclasses pick the engine.
 */
abstract class SchemaV9MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void aHeartbeatStoredBeforeVersion9AdvertisesNothingAndTheEarlierReleasesHeartbeatStillWorks() {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(8, schema.migrate(8));
        db.database().execute("INSERT INTO ss_saga_node (node_id, heartbeat_at) VALUES ('orders-a',"
                + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00')");

        assertEquals(JdbcSchema.latestVersion(), schema.migrate());
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        assertEquals(Map.of("orders-a", new NodeHeartbeat(T0, null)), store.nodes());
        store.heartbeat("orders-a", T0.plusSeconds(10), Map.of("pay-saga", Set.of(1, 2)));
        assertEquals(Map.of("orders-a", new NodeHeartbeat(T0.plusSeconds(10), Map.of("pay-saga", Set.of(1, 2)))),
                store.nodes());
        // a node of the earlier release writes its heartbeat as it did (naming no definitions) beside the new column
        db.database().execute("MERGE INTO ss_saga_node t USING (VALUES (CAST('orders-c' AS VARCHAR(200)),"
                + " CAST(TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:20+00' AS TIMESTAMP WITH TIME ZONE)))"
                + " AS s(node_id, heartbeat_at) ON t.node_id = s.node_id"
                + " WHEN MATCHED THEN UPDATE SET heartbeat_at = s.heartbeat_at"
                + " WHEN NOT MATCHED THEN INSERT (node_id, heartbeat_at) VALUES (s.node_id, s.heartbeat_at)");
        assertEquals(new NodeHeartbeat(T0.plusSeconds(20), null), store.nodes().get("orders-c"));
    }

    @Test
    void aNodeRowWhoseDefinitionsNoNodeWroteIsReadAsAdvertisingNothing() {
        assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(db.database().dataSource()).migrate());
        List<String> written = List.of("not json", "", "null", "[1, 2]", "{\"pay-saga\": 1}",
                "{\"pay-saga\": [\"one\"]}", "{\"pay-saga\": [1, 99999999999]}");
        for (int i = 0; i < written.size(); i++) { // edited by hand, or by a tool
            db.database().execute("INSERT INTO ss_saga_node (node_id, heartbeat_at, definitions) VALUES ('n-" + i
                    + "', TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00', '" + written.get(i) + "')");
        }
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        store.heartbeat("orders-a", T0, Map.of("pay-saga", Set.of(1)));

        Map<String, NodeHeartbeat> nodes = store.nodes(); // not a failure of every heartbeat's reading
        for (int i = 0; i < written.size(); i++) {
            assertEquals(new NodeHeartbeat(T0, null), nodes.get("n-" + i), written.get(i));
        }
        assertEquals(new NodeHeartbeat(T0, Map.of("pay-saga", Set.of(1))), nodes.get("orders-a"));
    }
}
