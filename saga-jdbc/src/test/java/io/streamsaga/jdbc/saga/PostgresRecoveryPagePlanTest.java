package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.spi.RecoveryQuery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Instant;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The plan PostgreSQL picks for a page of {@link JdbcSagaStore#findRecoveryCandidates}: over many unfinished sagas,
 * a page is read in order from the index and stops at its limit, instead of a sort of every unfinished saga for each
 * page (a recovery of N sagas would sort them N/500 times). The statement and parameters are those the store sends
 * (captured from its connection); the table holds fewer rows than ANALYZE samples, so its statistics, and the plan,
 * are the same at each run.
 */
class PostgresRecoveryPagePlanTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    @Test
    void aRecoveryPageIsReadInOrderFromTheIndexAndStopsAtItsLimitWithoutSortingEveryUnfinishedSaga() throws Exception {
        DataSource dataSource = db.database().dataSource();
        JdbcSchema.of(dataSource).migrate();
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute("INSERT INTO ss_saga (saga_id, saga_name, definition_version, business_key, data_type, data,"
                    + " status, steps, created_at, updated_at, version)"
                    + " SELECT 's-' || g, 'order', 1, 'k-' || g, 'order-data', '{}'::bytea,"
                    + " CASE WHEN g % 10 = 0 THEN 'COMPLETED' WHEN g % 7 = 0 THEN 'COMPENSATING' ELSE 'RUNNING' END,"
                    + " '[]'::bytea, timestamptz '2026-01-01' + (g / 3) * interval '1 millisecond',"
                    + " timestamptz '2026-01-01' + g * interval '1 millisecond', 1 FROM generate_series(1, 20000) g");
            s.execute("ANALYZE ss_saga");
        }
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        RecoveryQuery first = RecoveryQuery.firstPage(Instant.parse("2026-01-02T00:00:00Z"), Set.of("node-b"), 500);
        RecoveryQuery second = first.next(store.findRecoveryCandidates(first).get(499), Set.of("node-b"));
        capture.clear();

        assertEquals(500, store.findRecoveryCandidates(second).size());

        assertEquals(1, capture.statements().size(), "one statement per page");
        String plan = capture.explain(dataSource, "EXPLAIN ", 0);
        assertFalse(plan.contains("Seq Scan"), plan);
        assertFalse(plan.contains("Bitmap"), plan);
        // Every sort is either incremental (by id within equal creation times, over an ordered index scan) or over
        // the rows of a page already limited: none reads more than a page's worth per status.
        for (String line : plan.split("\n")) {
            if (line.contains("Sort  (") && !line.contains("Incremental")) {
                assertTrue(Long.parseLong(line.replaceAll(".*rows=(\\d+).*", "$1")) <= 1000, plan);
            }
        }
        assertTrue(plan.contains("Index Scan using ss_saga_status"), plan);
    }
}
