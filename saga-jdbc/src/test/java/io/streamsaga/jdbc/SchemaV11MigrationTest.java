package io.streamsaga.jdbc;

import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Schema version 11 (an index holding each saga's name beside its status, for the counts per saga name and status)
 * over a database at version 10 holding sagas: the index is added, nothing dropped, and the sagas stored before are
 * counted per name and status; a second migrate() changes nothing, and an index a DBA built beforehand under the name
 * (PostgreSQL's CREATE INDEX CONCURRENTLY) is passed over; subclasses pick the engine.
 */
abstract class SchemaV11MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    /** The index of version 11 on this engine, and its columns in order. */
    private String index() {
        return kind() == TestDatabase.Kind.POSTGRES ? "ss_saga_name_status" : "ss_saga_status_name";
    }

    private List<String> indexColumns() {
        return kind() == TestDatabase.Kind.POSTGRES ? List.of("saga_name", "status") : List.of("status", "saga_name");
    }

    @Test
    void migratingFromVersion10AddsTheNameAndStatusIndexDropsNoneAndCountsTheSagasStoredBefore() throws Exception {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(10, schema.migrate(10));
        storeAsVersion10Did();
        Map<String, List<String>> before = indexes();
        assertFalse(before.containsKey(index()), before.toString());

        assertEquals(11, JdbcSchema.latestVersion());
        assertEquals(11, schema.migrate());
        Map<String, List<String>> after = indexes();
        assertEquals(indexColumns(), after.get(index()), after.toString());
        after.remove(index());
        assertEquals(before, after, "every index of version 10 kept");

        assertEquals(Map.of(
                "order-saga", Map.of(SagaStatus.RUNNING, 2L, SagaStatus.FAILED_NEEDS_ATTENTION, 1L),
                "refund-saga", Map.of(SagaStatus.RUNNING, 1L, SagaStatus.FAILED_NEEDS_ATTENTION, 0L)),
                JdbcSagaStore.create(db.database().dataSource())
                        .countBySagaAndStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.FAILED_NEEDS_ATTENTION)));
    }

    @Test
    void aSecondMigrateChangesNothingAndAnIndexBuiltBeforehandUnderTheNameIsPassedOver() throws Exception {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(10, schema.migrate(10));
        storeAsVersion10Did();
        // as a DBA builds it on a large table before migrating, without locking out the writes (PostgreSQL)
        try (Connection c = db.database().dataSource().getConnection(); Statement s = c.createStatement()) {
            s.execute("CREATE INDEX" + (kind() == TestDatabase.Kind.POSTGRES ? " CONCURRENTLY " : " ") + index()
                    + " ON ss_saga (" + String.join(", ", indexColumns()) + ")");
        }

        assertEquals(11, schema.migrate());
        Map<String, List<String>> migrated = indexes();
        assertEquals(11, schema.migrate());

        assertEquals(migrated, indexes());
        assertEquals(indexColumns(), migrated.get(index()));
        assertEquals(11, db.database().queryLong("SELECT COUNT(*) FROM ss_schema_version"), "each version once");
        assertEquals(Map.of("order-saga", Map.of(SagaStatus.COMPLETED, 1L)),
                JdbcSagaStore.create(db.database().dataSource()).countBySagaAndStatus(Set.of(SagaStatus.COMPLETED)));
    }

    /**
     * Sagas as version 10 stored them: of order-saga two running, one needing attention, one completed; of
     * refund-saga one running.
     */
    private void storeAsVersion10Did() throws Exception {
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = c.prepareStatement("INSERT INTO ss_saga (saga_id, saga_name, definition_version,"
                     + " data_type, status, steps, created_at, updated_at, version)"
                     + " VALUES (?, ?, 1, 'order-data', ?, ?, ?, ?, 1)")) {
            for (String[] saga : List.of(new String[]{"o-1", "order-saga", "RUNNING"},
                    new String[]{"o-2", "order-saga", "RUNNING"},
                    new String[]{"o-3", "order-saga", "FAILED_NEEDS_ATTENTION"},
                    new String[]{"o-4", "order-saga", "COMPLETED"},
                    new String[]{"r-1", "refund-saga", "RUNNING"})) {
                ps.setString(1, saga[0]);
                ps.setString(2, saga[1]);
                ps.setString(3, saga[2]);
                ps.setBytes(4, "[]".getBytes(StandardCharsets.UTF_8));
                ps.setTimestamp(5, Timestamp.from(T0));
                ps.setTimestamp(6, Timestamp.from(T0));
                ps.executeUpdate();
            }
        }
    }

    /** The indexes of {@code ss_saga} by name, each with its columns in order, in lower case. */
    private Map<String, List<String>> indexes() throws Exception {
        Map<String, TreeMap<Short, String>> columns = new TreeMap<>();
        try (Connection c = db.database().dataSource().getConnection()) {
            DatabaseMetaData meta = c.getMetaData();
            String table = meta.storesUpperCaseIdentifiers() ? "SS_SAGA" : "ss_saga";
            try (ResultSet rs = meta.getIndexInfo(null, c.getSchema(), table, false, false)) {
                while (rs.next()) {
                    String name = rs.getString("INDEX_NAME");
                    if (name != null) {
                        columns.computeIfAbsent(name.toLowerCase(Locale.ROOT), n -> new TreeMap<>()).put(
                                rs.getShort("ORDINAL_POSITION"), rs.getString("COLUMN_NAME").toLowerCase(Locale.ROOT));
                    }
                }
            }
        }
        Map<String, List<String>> result = new TreeMap<>();
        columns.forEach((name, ofIndex) -> result.put(name, List.copyOf(ofIndex.values())));
        return result;
    }
}
