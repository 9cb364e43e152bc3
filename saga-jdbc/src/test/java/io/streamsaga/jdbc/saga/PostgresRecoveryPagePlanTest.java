package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.spi.RecoveryQuery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

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
        List<String> statements = new ArrayList<>();
        List<Map<Integer, Object>> parameters = new ArrayList<>();
        JdbcSagaStore store = JdbcSagaStore.create(capturing(dataSource, statements, parameters));
        RecoveryQuery first = RecoveryQuery.firstPage(Instant.parse("2026-01-02T00:00:00Z"), Set.of("node-b"), 500);
        RecoveryQuery second = first.next(store.findRecoveryCandidates(first).get(499), Set.of("node-b"));
        statements.clear();
        parameters.clear();

        assertEquals(500, store.findRecoveryCandidates(second).size());

        assertEquals(1, statements.size(), "one statement per page");
        String plan = explain(dataSource, statements.get(0), parameters.get(0));
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

    private static String explain(DataSource dataSource, String sql, Map<Integer, Object> params) throws Exception {
        try (Connection c = dataSource.getConnection(); PreparedStatement ps = c.prepareStatement("EXPLAIN " + sql)) {
            for (Map.Entry<Integer, Object> p : params.entrySet()) {
                ps.setObject(p.getKey(), p.getValue());
            }
            StringBuilder plan = new StringBuilder();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    plan.append(rs.getString(1)).append('\n');
                }
            }
            return plan.toString();
        }
    }

    /** {@code dataSource}, recording each statement prepared on its connections and the parameters set on it. */
    private static DataSource capturing(DataSource dataSource, List<String> statements,
                                        List<Map<Integer, Object>> parameters) {
        return proxy(DataSource.class, dataSource, (method, args, result) -> {
            if (result instanceof Connection connection) {
                return proxy(Connection.class, connection, (m, a, r) -> {
                    if (m.equals("prepareStatement") && r instanceof PreparedStatement ps) {
                        statements.add((String) a[0]);
                        Map<Integer, Object> set = new TreeMap<>();
                        parameters.add(set);
                        return proxy(PreparedStatement.class, ps, (pm, pa, pr) -> {
                            if (pm.equals("setObject")) {
                                set.put((Integer) pa[0], pa[1]);
                            }
                            return pr;
                        });
                    }
                    return r;
                });
            }
            return result;
        });
    }

    private interface After {
        Object apply(String method, Object[] args, Object result);
    }

    private static <T> T proxy(Class<T> type, T target, After after) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, method, args) -> {
            Object result;
            try {
                result = method.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            return after.apply(method.getName(), args, result);
        }));
    }
}
