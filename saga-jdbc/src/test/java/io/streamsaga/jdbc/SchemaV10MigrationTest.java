package io.streamsaga.jdbc;

import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.SagaQuery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Schema version 10 (the sagas of a business key indexed in a page's order) over a database at version 9 holding
 * sagas: the index of version 4 on the key alone is replaced by {@code ss_saga_business_key_created}, and the sagas
 * stored before are found by their key, a page at a time, in creation order then by id; subclasses pick the engine.
 */
abstract class SchemaV10MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void migratingFromVersion9ReplacesTheKeyIndexAndKeepsTheSagasOfEachKeyInPageOrder() throws Exception {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(9, schema.migrate(9));
        // as version 9 stored them: three sagas of one key, two of them created at the same instant, and another key's
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = c.prepareStatement("INSERT INTO ss_saga (saga_id, saga_name, definition_version,"
                     + " business_key, data_type, status, steps, created_at, updated_at, version)"
                     + " VALUES (?, 'order-saga', 1, ?, 'order-data', 'COMPLETED', ?, ?, ?, 1)")) {
            for (String[] saga : List.of(new String[]{"s-3", "order-1", "1"}, new String[]{"s-1", "order-1", "2"},
                    new String[]{"s-2", "order-1", "1"}, new String[]{"s-4", "order-2", "0"})) {
                Timestamp at = Timestamp.from(T0.plusSeconds(Long.parseLong(saga[2])));
                ps.setString(1, saga[0]);
                ps.setString(2, saga[1]);
                ps.setBytes(3, "[]".getBytes(StandardCharsets.UTF_8));
                ps.setTimestamp(4, at);
                ps.setTimestamp(5, at);
                ps.executeUpdate();
            }
        }
        assertTrue(indexes().contains("ss_saga_business_key"), indexes().toString());

        assertEquals(JdbcSchema.latestVersion(), schema.migrate());
        Set<String> indexes = indexes();
        assertTrue(indexes.contains("ss_saga_business_key_created"), indexes.toString());
        assertTrue(!indexes.contains("ss_saga_business_key"), "replaced: " + indexes);

        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        SagaQuery first = new SagaQuery(EnumSet.allOf(SagaStatus.class), "order-1", null, null, 2);
        List<SagaInstance> page = store.findPage(first);
        assertEquals(List.of("s-2", "s-3"), page.stream().map(SagaInstance::sagaId).toList());
        assertEquals(List.of("s-1"), store.findPage(first.next(page.get(1))).stream().map(SagaInstance::sagaId).toList());
        assertEquals(List.of("s-2", "s-3", "s-1"),
                store.findByBusinessKey("order-1").stream().map(SagaInstance::sagaId).toList());
    }

    /** The names of the indexes of {@code ss_saga}, in lower case. */
    private Set<String> indexes() throws Exception {
        Set<String> names = new TreeSet<>();
        try (Connection c = db.database().dataSource().getConnection()) {
            DatabaseMetaData meta = c.getMetaData();
            String table = meta.storesUpperCaseIdentifiers() ? "SS_SAGA" : "ss_saga";
            try (ResultSet rs = meta.getIndexInfo(null, c.getSchema(), table, false, false)) {
                while (rs.next()) {
                    if (rs.getString("INDEX_NAME") != null) {
                        names.add(rs.getString("INDEX_NAME").toLowerCase(Locale.ROOT));
                    }
                }
            }
        }
        return names;
    }
}
