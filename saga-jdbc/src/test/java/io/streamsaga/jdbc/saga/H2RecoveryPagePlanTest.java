package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Instant;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The plan H2 picks for a page of {@link JdbcSagaStore#findRecoveryCandidates}, as {@link PostgresRecoveryPagePlanTest}
 * pins PostgreSQL's: over many unfinished sagas, each status of a page is read in order from the index
 * {@code ss_saga_status (status, created_at)} ("index sorted": only the sagas of equal creation times are sorted,
 * by id) and stops at its limit, instead of reading and sorting every unfinished saga after the position for each
 * page. {@code EXPLAIN ANALYZE} counts the rows each part read ({@code scanCount}). The statement and parameters are
 * those the store sends (captured from its connection). So is a page of {@link JdbcSagaStore#findPage} (the
 * orchestrator's paged queries) of a status, of idle sagas, and of a business key (from
 * {@code ss_saga_business_key_created}):
 * the indexes of schema version 4 serve it, the key's the index of version 10 in its keyset order, as it serves
 * {@link JdbcSagaStore#findByBusinessKey} (every saga of the key, in that order, none sorted).
 */
class H2RecoveryPagePlanTest {
    private static final Pattern SCAN_COUNT = Pattern.compile("scanCount: (\\d+)");

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.h2();

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
        String plan = capture.explain(dataSource, "EXPLAIN ANALYZE ", 0);
        // Each status is read from the index, bounded by the position's creation time, and in its order: H2 sorts
        // only the few sagas of one creation time by id ("index sorted: 2 of 3 columns"), not the whole range.
        assertEquals(2, count(plan, "/* public.ss_saga_status: "), plan);
        assertEquals(2, count(plan, "/* index sorted"), plan);
        // The rows read: at most a page per status and the sagas sharing the last one's creation time (the
        // statuses' 15,000 unfinished sagas after the position were read, and sorted, before).
        Matcher scans = SCAN_COUNT.matcher(plan);
        int parts = 0;
        while (scans.find()) {
            parts++;
            assertTrue(Long.parseLong(scans.group(1)) <= 1001, plan);
        }
        assertEquals(3, parts, plan); // each status, and the page merging them
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) {
            n++;
        }
        return n;
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
            String plan = capture.explain(dataSource, "EXPLAIN ANALYZE ", i);
            if (i < 2) {
                int statuses = i == 0 ? 1 : 2;
                assertEquals(statuses, count(plan, "/* public.ss_saga_status: "), plan);
                assertEquals(statuses, count(plan, "/* index sorted"), plan);
            } else {
                assertTrue(plan.contains("/* public.ss_saga_business_key_created: "), plan);
            }
            Matcher scans = SCAN_COUNT.matcher(plan);
            while (scans.find()) {
                assertTrue(Long.parseLong(scans.group(1)) <= 1001, plan); // a page per status, not every row after it
            }
        }
    }

    @Test
    void aCountByStatusReadsTheEntriesOfTheStatusesAskedForFromTheStatusIndexNotEveryRow() throws Exception {
        DataSource dataSource = mostlyCompleted(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION);

        Map<SagaStatus, Long> counts = store.countByStatus(attention);

        assertEquals(expectedCounts(attention), counts);
        assertCountedInOneStatementFromTheIndex("ss_saga_status", capture, dataSource, attention);
    }

    /**
     * {@code capture} holds one statement, which read the entries of {@code statuses} from the index {@code index}
     * (and the one past each of their ranges), not the table's 20,000 rows.
     */
    private static void assertCountedInOneStatementFromTheIndex(String index, StatementCapture capture,
                                                                DataSource dataSource, Set<SagaStatus> statuses)
            throws Exception {
        assertEquals(1, capture.statements().size(), "one statement");
        String plan = capture.explain(dataSource, "EXPLAIN ANALYZE ", 0);
        assertTrue(plan.contains("/* public." + index + ": status IN("), plan);
        Matcher scans = SCAN_COUNT.matcher(plan);
        assertTrue(scans.find(), plan);
        long read = Long.parseLong(scans.group(1));
        assertTrue(read <= expectedCounts(statuses).values().stream().mapToLong(Long::longValue).sum()
                + statuses.size(), plan);
    }

    @Test
    void aCountBySagaAndStatusReadsTheEntriesOfTheStatusesAskedForFromTheStatusAndNameIndexNotEveryRow()
            throws Exception {
        DataSource dataSource = mostlyCompleted(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);
        JdbcSagaStore store = JdbcSagaStore.create(capture.dataSource());
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION);

        Map<String, Map<SagaStatus, Long>> counts = store.countBySagaAndStatus(attention);

        assertEquals(expectedCounts(attention), counts.values().stream().findFirst().orElseThrow(), counts.toString());
        assertEquals(1, counts.size(), "one saga name");
        // schema 11's index holds the name beside the status: H2 takes both from its entries, not from the rows
        assertCountedInOneStatementFromTheIndex("ss_saga_status_name", capture, dataSource, attention);
    }

    /**
     * The status of saga {@code s-g} of {@link #manySagas()} once {@link #mostlyCompleted} ran: completed every 10th,
     * compensating every 7th (not 10th), running those whose number ends in 3, completed the others.
     */
    static Map<SagaStatus, Long> expectedCounts(Set<SagaStatus> statuses) {
        Map<SagaStatus, Long> counts = new EnumMap<>(SagaStatus.class);
        statuses.forEach(status -> counts.put(status, 0L));
        for (int g = 1; g <= 20_000; g++) {
            SagaStatus status = g % 10 == 0 ? SagaStatus.COMPLETED : g % 7 == 0 ? SagaStatus.COMPENSATING
                    : g % 10 == 3 ? SagaStatus.RUNNING : SagaStatus.COMPLETED;
            counts.computeIfPresent(status, (s, n) -> n + 1);
        }
        return counts;
    }

    /**
     * As a store that keeps its finished sagas for days holds them: most completed (the running sagas of
     * {@link #manySagas()} but those whose number ends in 3), and statistics that say so.
     */
    static DataSource mostlyCompleted(DataSource dataSource) throws Exception {
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute("UPDATE ss_saga SET status = 'COMPLETED' WHERE status = 'RUNNING' AND saga_id NOT LIKE '%3'");
            s.execute("ANALYZE");
        }
        return dataSource;
    }

    /** {@code dataSource} with 5,000 more sagas of one key, {@code k-big} (an account's, say), 2 a millisecond. */
    private static DataSource withABigKey(DataSource dataSource) throws Exception {
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute("INSERT INTO ss_saga (saga_id, saga_name, definition_version, business_key, data_type, data,"
                    + " status, steps, created_at, updated_at, version)"
                    + " SELECT 'b-' || g, 'order', 1, 'k-big', 'order-data', X'7b7d',"
                    + " CASE WHEN MOD(g, 10) = 0 THEN 'COMPLETED' ELSE 'RUNNING' END, X'5b5d',"
                    + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00' + CAST(g / 2 AS INT) * INTERVAL '0.001' SECOND,"
                    + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00' + g * INTERVAL '0.001' SECOND, 1"
                    + " FROM SYSTEM_RANGE(1, 5000) r(g)");
            s.execute("ANALYZE");
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
        String plan = capture.explain(dataSource, "EXPLAIN ANALYZE ", 0);
        // read in the key's creation order (the index's order, nothing sorted), stopping at the page's end: not the
        // 4,500 sagas of the key after the page's start read, then sorted
        assertTrue(plan.contains("/* public.ss_saga_business_key_created: "), plan);
        assertTrue(plan.contains("/* index sorted */"), plan);
        Matcher scans = SCAN_COUNT.matcher(plan);
        assertTrue(scans.find(), plan);
        assertTrue(Long.parseLong(scans.group(1)) <= 501, plan);
    }

    @Test
    void theSagasOfABusinessKeyAreReadOldestFirstInTheKeyIndexsOrderWithoutSortingThem() throws Exception {
        DataSource dataSource = withABigKey(manySagas());
        StatementCapture capture = new StatementCapture(dataSource);

        assertAllOfTheBigKeyOldestFirst(JdbcSagaStore.create(capture.dataSource()).findByBusinessKey("k-big"));

        assertEquals(1, capture.statements().size(), "one statement");
        String plan = capture.explain(dataSource, "EXPLAIN ANALYZE ", 0);
        // read in the key's creation order from the index, nothing sorted: not the key's 5,000 sagas read, then sorted
        assertTrue(plan.contains("/* public.ss_saga_business_key_created: "), plan);
        assertTrue(plan.contains("/* index sorted */"), plan);
    }

    /** {@code sagas} are the 5,000 of {@link #withABigKey}'s key, oldest first, then by id. */
    static void assertAllOfTheBigKeyOldestFirst(List<SagaInstance> sagas) {
        assertEquals(5000, sagas.size());
        assertEquals(sagas.stream().sorted(RecoveryQuery.ORDER).toList(), sagas, "oldest first, then by id");
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
                    + " SELECT 's-' || g, 'order', 1, 'k-' || MOD(g, 5000), 'order-data', X'7b7d',"
                    + " CASE WHEN MOD(g, 10) = 0 THEN 'COMPLETED' WHEN MOD(g, 7) = 0 THEN 'COMPENSATING'"
                    + " ELSE 'RUNNING' END, X'5b5d',"
                    + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00' + CAST(g / 3 AS INT) * INTERVAL '0.001' SECOND,"
                    + " TIMESTAMP WITH TIME ZONE '2026-01-01 00:00:00+00' + g * INTERVAL '0.001' SECOND, 1"
                    + " FROM SYSTEM_RANGE(1, 20000) r(g)");
            s.execute("ANALYZE");
        }
        return dataSource;
    }
}
