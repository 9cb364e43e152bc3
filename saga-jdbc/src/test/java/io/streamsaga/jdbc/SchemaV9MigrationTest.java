package io.streamsaga.jdbc;

import io.streamsaga.CapturedLog;
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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Schema version 9 (the definitions a node advertises with its heartbeat) over a database at version 8 holding a
 * node's heartbeat: the node is read after the upgrade as one that advertises nothing (the start guard does not count
 * it), its next heartbeat advertises, and a heartbeat as the earlier release writes it still works on version 9;
 * subclasses pick the engine.
 */
abstract class SchemaV9MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final String STORE_LOGGER = JdbcSagaStore.class.getName();

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

    @Test
    void aHandWrittenVersionThatIsNotAnIntegerIsNotReadAsOne() {
        // Jackson's canConvertToInt() is true for 1.5 (asInt() truncates it to 1): the row advertised version 1
        assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(db.database().dataSource()).migrate());
        List<String> written = List.of("{\"pay-saga\": [1.5]}", "{\"pay-saga\": [1, 2.5]}", "{\"pay-saga\": [1.0]}",
                "{\"pay-saga\": [1e0]}");
        for (int i = 0; i < written.size(); i++) {
            db.database().execute("INSERT INTO ss_saga_node (node_id, heartbeat_at, definitions) VALUES ('n-" + i
                    + "', TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00', '" + written.get(i) + "')");
        }
        Map<String, NodeHeartbeat> nodes = JdbcSagaStore.create(db.database().dataSource()).nodes();
        for (int i = 0; i < written.size(); i++) {
            assertEquals(new NodeHeartbeat(T0, null), nodes.get("n-" + i), written.get(i));
        }
    }

    @Test
    void aNodeRowWhoseDefinitionsNoNodeWroteIsWarnedOfOnceUntilItsValueChanges() throws Throwable {
        // every node reads every row at each heartbeat: a row edited by hand logged a warning at each one, for as long
        // as it stayed
        assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(db.database().dataSource()).migrate());
        db.database().execute("INSERT INTO ss_saga_node (node_id, heartbeat_at, definitions) VALUES ('n-1',"
                + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00', 'not json')");
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        String warning = "WARN " + STORE_LOGGER + " - saga ownership: the definitions advertised by node 'n-1' are"
                + " unreadable ('not json'): taken as unknown";

        String log = CapturedLog.ofLogger(STORE_LOGGER, () -> {
            for (int heartbeat = 0; heartbeat < 5; heartbeat++) {
                assertEquals(new NodeHeartbeat(T0, null), store.nodes().get("n-1"));
            }
        });
        assertEquals(1, warnings(log), log);
        assertTrue(log.contains(warning), log);

        db.database().execute("UPDATE ss_saga_node SET definitions = '[1]' WHERE node_id = 'n-1'");
        log = CapturedLog.ofLogger(STORE_LOGGER, () -> {
            for (int heartbeat = 0; heartbeat < 3; heartbeat++) {
                store.nodes();
            }
        });
        assertEquals(1, warnings(log), "another bad value is warned of once: " + log);
        assertTrue(log.contains("are unreadable ('[1]')"), log);

        // repaired, then broken again as before: warned of again, once
        store.heartbeat("n-1", T0, Map.of("pay-saga", Set.of(1)));
        log = CapturedLog.ofLogger(STORE_LOGGER, () -> {
            store.nodes(); // read while repaired: nothing to warn of
            db.database().execute("UPDATE ss_saga_node SET definitions = 'not json' WHERE node_id = 'n-1'");
            store.nodes();
            store.nodes();
        });
        assertEquals(1, warnings(log), log);
    }

    private static long warnings(String log) {
        return log.lines().filter(line -> line.contains(" WARN ")).count();
    }
}
