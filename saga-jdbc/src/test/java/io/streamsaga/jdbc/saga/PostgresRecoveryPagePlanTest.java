package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The plan PostgreSQL picks for a page of {@link JdbcSagaStore#findRecoveryCandidates}: over many unfinished sagas,
 * a page is read in order from the index and stops at its limit, instead of a sort of every unfinished saga for each
 * page (a recovery of N sagas would sort them N/500 times). The statement and parameters are those the store sends
 * (captured from its connection); the table holds fewer rows than ANALYZE samples, so its statistics, and the plan,
 * are the same at each run. So is a page of {@link JdbcSagaStore#findPage} (the orchestrator's paged queries) of a
 * status, of idle sagas, and of a business key (from {@code ss_saga_business_key_created}): the indexes of schema
 * version 4 serve it, the key's the index of version 10 in its keyset order, as it serves
 * {@link JdbcSagaStore#findByBusinessKey} (every saga of the key, in that order, none sorted). A count by status, and
 * one by saga name and status (an index-only scan of the index of schema version 11 on (saga_name, status), no row
 * read), reads an index, not every row.
 */
class PostgresRecoveryPagePlanTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    @Test
    void aRecoveryPageIsReadInOrderFromTheIndexAndStopsAtItsLimitWithoutSortingEveryUnfinishedSaga() throws Exception {
        DataSource dataSource = manySagas();
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

    @Test
    void aPageOfAStatusOrOfIdleSagasIsReadInOrderFromTheStatusIndexAndAPageOfAKeyFromTheKeyIndex() throws Exception {
        DataSource dataSource = manySagas();
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        SagaQuery completed = new SagaQuery(Set.of(SagaStatus.COMPLETED), null, null, null, 500);
        SagaQuery idle = new SagaQuery(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING), null,
                Instant.parse("2026-01-01T00:00:10Z"), null, 500);
        SagaQuery key = new SagaQuery(EnumSet.allOf(SagaStatus.class), "k-42", null, null, 2);
        List<SagaQuery> secondPages = List.of(next(completed, store), next(idle, store), next(key, store));
        capture.clear();

        assertEquals(List.of(500, 500, 2), secondPages.stream().map(q -> store.findPage(q).size()).toList());

        assertEquals(3, capture.statements().size(), "one statement per page");
        for (int i = 0; i < 3; i++) {
            String plan = capture.explain(dataSource, "EXPLAIN ", i);
            assertFalse(plan.contains("Seq Scan"), plan);
            for (String line : plan.split("\n")) {
                if (line.contains("Sort  (") && !line.contains("Incremental")) {
                    assertTrue(Long.parseLong(line.replaceAll(".*rows=(\\d+).*", "$1")) <= 1000, plan);
                }
            }
            assertTrue(plan.contains(i < 2 ? "Index Scan using ss_saga_status" : "ss_saga_business_key_created"), plan);
        }
    }

    @Test
    void aCountByStatusIsServedByTheStatusIndexOrAnIndexOnlyScanOfTheNameAndStatusIndex() throws Exception {
        DataSource dataSource = mostlyCompleted(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION);

        assertEquals(H2RecoveryPagePlanTest.expectedCounts(attention), store.countByStatus(attention));

        assertEquals(1, capture.statements().size(), "one statement");
        String plan = capture.explain(dataSource, "EXPLAIN ", 0);
        assertFalse(plan.contains("Seq Scan"), plan);
        // the sagas found by the status index, or no row read at all: the planner's pick by cost between the status
        // index and an index-only scan of schema 11's (saga_name, status) index (its pick over these 20,000 sagas)
        assertTrue(plan.contains("ss_saga_status") || plan.contains("Index Only Scan using ss_saga_name_status"), plan);
    }

    @Test
    void aCountBySagaAndStatusIsAnIndexOnlyScanOfTheNameAndStatusIndexReadingNoRow() throws Exception {
        DataSource dataSource = mostlyCompleted(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION);

        assertEquals(Map.of("order", H2RecoveryPagePlanTest.expectedCounts(attention)),
                store.countBySagaAndStatus(attention));

        assertEquals(1, capture.statements().size(), "one statement");
        // run, so that the plan says how many rows it read: an index-only scan of schema 11's (saga_name, status)
        // index, its entries of other statuses passed over in the index, reads no row for the name (the counted
        // sagas' pages all-visible after VACUUM), where the status index of schema 4 had each counted saga's row read
        String plan = capture.explain(dataSource, "EXPLAIN (ANALYZE, COSTS OFF) ", 0);
        assertFalse(plan.contains("Seq Scan"), plan);
        assertFalse(plan.contains("Bitmap"), plan);
        assertTrue(plan.contains("Index Only Scan using ss_saga_name_status on ss_saga"), plan);
        assertTrue(plan.contains("Index Cond: (status = ANY ("), plan);
        assertTrue(plan.contains("Heap Fetches: 0"), plan);
    }

    /**
     * {@code dataSource} with the running sagas completed but those whose number ends in 3, as
     * H2RecoveryPagePlanTest.mostlyCompleted: as a store that keeps its finished sagas for days holds them, vacuumed
     * as autovacuum keeps such a table (every page all-visible).
     */
    private static DataSource mostlyCompleted(DataSource dataSource) throws Exception {
        try (Connection other = dataSource.getConnection(); Statement o = other.createStatement();
             Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            // Another session of the database holds a snapshot over the update and the first VACUUM, as autovacuum's
            // ANALYZE of an earlier test's table may (every test's schema is in one database) on a loaded machine:
            // that VACUUM marks no updated page all-visible, so the planner prices an index-only scan with a heap fetch
            // a row and takes the status index instead. Held here at each run, so that the wait below is exercised.
            other.setAutoCommit(false);
            other.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            o.executeQuery("SELECT 1").close();
            s.execute("UPDATE ss_saga SET status = 'COMPLETED' WHERE status = 'RUNNING' AND saga_id NOT LIKE '%3'");
            s.execute("VACUUM ANALYZE ss_saga");
            other.rollback();
        }
        vacuumUntilEveryPageIsAllVisible(dataSource);
        return dataSource;
    }

    /**
     * VACUUM ANALYZE of {@code ss_saga} until it counts every page of it all-visible: a VACUUM marks a page so only
     * when each row on it is visible to every session of the database, which a snapshot taken before the last write
     * (held by another session) prevents until it ends.
     */
    private static void vacuumUntilEveryPageIsAllVisible(DataSource dataSource) {
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> {
            try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
                s.execute("VACUUM ANALYZE ss_saga");
                try (ResultSet rs = s.executeQuery(
                        "SELECT relallvisible, relpages FROM pg_class WHERE oid = 'ss_saga'::regclass")) {
                    rs.next();
                    return rs.getInt(1) == rs.getInt(2);
                }
            }
        });
    }

    /** {@code dataSource} with 5,000 more sagas of one key, {@code k-big} (an account's, say), 2 a millisecond. */
    private static DataSource withABigKey(DataSource dataSource) throws Exception {
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute("INSERT INTO ss_saga (saga_id, saga_name, definition_version, business_key, data_type, data,"
                    + " status, steps, created_at, updated_at, version)"
                    + " SELECT 'b-' || g, 'order', 1, 'k-big', 'order-data', '{}'::bytea,"
                    + " CASE WHEN g % 10 = 0 THEN 'COMPLETED' ELSE 'RUNNING' END,"
                    + " '[]'::bytea, timestamptz '2026-01-01' + (g / 2) * interval '1 millisecond',"
                    + " timestamptz '2026-01-01' + g * interval '1 millisecond', 1 FROM generate_series(1, 5000) g");
            s.execute("ANALYZE ss_saga");
        }
        return dataSource;
    }

    @Test
    void aPageOfABusinessKeyIsReadInItsOrderFromTheKeyIndexWithoutSortingEverySagaOfTheKey() throws Exception {
        DataSource dataSource = withABigKey(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        SagaQuery second = next(new SagaQuery(EnumSet.allOf(SagaStatus.class), "k-big", null, null, 500), store);
        capture.clear();

        assertEquals(500, store.findPage(second).size());

        assertEquals(1, capture.statements().size(), "one statement per page");
        String plan = capture.explain(dataSource, "EXPLAIN ", 0);
        // read in the key's creation order from the index, stopping at the page's end: no sort of the 4,500 sagas of
        // the key after the page's start
        assertFalse(plan.contains("Sort"), plan);
        assertFalse(plan.contains("Seq Scan"), plan);
        assertTrue(plan.contains("Index Scan using ss_saga_business_key_created"), plan);
    }

    @Test
    void theSagasOfABusinessKeyAreReadOldestFirstInTheKeyIndexsOrderWithoutSortingThem() throws Exception {
        DataSource dataSource = withABigKey(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);

        // as H2RecoveryPagePlanTest's big key
        H2RecoveryPagePlanTest.assertAllOfTheBigKeyOldestFirst(JdbcSagaStore.create(capture.dataSource())
                .findByBusinessKey("k-big"));

        assertEquals(1, capture.statements().size(), "one statement");
        String plan = capture.explain(dataSource, "EXPLAIN ", 0);
        // read in the key's creation order from the index: no sort of the key's 5,000 sagas
        assertFalse(plan.contains("Sort"), plan);
        assertFalse(plan.contains("Seq Scan"), plan);
        assertTrue(plan.contains("Index Scan using ss_saga_business_key_created"), plan);
    }

    private static SagaQuery next(SagaQuery query, JdbcSagaStore store) {
        List<SagaInstance> first = store.findPage(query);
        return query.next(first.get(first.size() - 1));
    }

    /**
     * A migrated database of 20,000 sagas created 3 a millisecond: completed every 10th, compensating every 7th (not
     * 10th), running the others; each updated g ms after the start of 2026; business keys {@code k-0} to
     * {@code k-4999}, 4 sagas each.
     */
    private DataSource manySagas() throws Exception {
        DataSource dataSource = db.database().dataSource();
        JdbcSchema.of(dataSource).migrate();
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute("INSERT INTO ss_saga (saga_id, saga_name, definition_version, business_key, data_type, data,"
                    + " status, steps, created_at, updated_at, version)"
                    + " SELECT 's-' || g, 'order', 1, 'k-' || (g % 5000), 'order-data', '{}'::bytea,"
                    + " CASE WHEN g % 10 = 0 THEN 'COMPLETED' WHEN g % 7 = 0 THEN 'COMPENSATING' ELSE 'RUNNING' END,"
                    + " '[]'::bytea, timestamptz '2026-01-01' + (g / 3) * interval '1 millisecond',"
                    + " timestamptz '2026-01-01' + g * interval '1 millisecond', 1 FROM generate_series(1, 20000) g");
            s.execute("ANALYZE ss_saga");
        }
        return dataSource;
    }
}
