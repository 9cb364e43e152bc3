package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaTransition;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Group commit's multi-row statements: a whole batch of saga updates (on PostgreSQL) or of history rows
 * (on both databases) as one statement, so the database plans and runs one statement per batch instead
 * of one per row. Stateless; used on one connection at a time.
 */
final class MultiRowWrites {
    /** Rows per statement: 19 parameters a row stays well below the protocol's 32,767 parameters. */
    static final int MAX_ROWS = 1_000;

    private static final String UPDATE_HEAD = "UPDATE ss_saga AS t SET saga_name = v.saga_name,"
            + " definition_version = v.definition_version, business_key = v.business_key, data_type = v.data_type,"
            + " data = v.data, status = v.status, steps = v.steps, failure_step = v.failure_step,"
            + " failure_class = v.failure_class, failure_message = v.failure_message,"
            + " comp_failure_step = v.comp_failure_step, comp_failure_class = v.comp_failure_class,"
            + " comp_failure_message = v.comp_failure_message, owner = v.owner, updated_at = v.updated_at,"
            + " version = v.version"
            + " FROM (VALUES ";
    private static final String UPDATE_TAIL = ") AS v(idx, saga_id, prev_version, saga_name, definition_version,"
            + " business_key, data_type, data, status, steps, failure_step, failure_class, failure_message,"
            + " comp_failure_step, comp_failure_class, comp_failure_message, owner, updated_at, version)"
            + " WHERE t.saga_id = v.saga_id AND t.version = v.prev_version RETURNING v.idx";
    private static final String UPDATE_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    private static final String TRANSITION_HEAD = "INSERT INTO ss_saga_transition (saga_id, version, at, type, step,"
            + " attempt, detail) VALUES ";
    private static final String TRANSITION_ROW = "(?, ?, ?, ?, ?, ?, ?)";

    private MultiRowWrites() {
    }

    /**
     * PostgreSQL only ({@code UPDATE ... FROM (VALUES ...) RETURNING}): version-checked updates of the
     * writes at {@code indexes}, one statement per {@link #MAX_ROWS}; returns the indexes whose row was
     * updated (a missing one is a version conflict). Should two writes of one saga share a batch (two
     * orchestrators racing), at most one of them matches the row, as with separate updates.
     */
    static BitSet updatePostgres(Connection c, List<JdbcSagaStore.Write> writes, List<Integer> indexes)
            throws SQLException {
        BitSet updated = new BitSet(writes.size());
        for (int from = 0; from < indexes.size(); from += MAX_ROWS) {
            List<Integer> chunk = indexes.subList(from, Math.min(indexes.size(), from + MAX_ROWS));
            try (PreparedStatement ps = c.prepareStatement(UPDATE_HEAD + rows(UPDATE_ROW, chunk.size()) + UPDATE_TAIL)) {
                int p = 1;
                for (int index : chunk) {
                    JdbcSagaStore.Write w = writes.get(index);
                    SagaInstance s = w.instance();
                    ps.setInt(p++, index);
                    ps.setString(p++, s.sagaId());
                    ps.setLong(p++, s.version() - 1);
                    p = JdbcSagaStore.bindColumns(ps, p, s, w.data(), w.steps());
                    Sql.setInstant(ps, p++, s.updatedAt());
                    ps.setLong(p++, s.version());
                }
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        updated.set(rs.getInt(1));
                    }
                }
            }
        }
        return updated;
    }

    /**
     * Inserts the transitions of the writes at {@code indexes}, in order, one multi-row INSERT per
     * {@link #MAX_ROWS} rows.
     */
    static void insertTransitions(Connection c, List<JdbcSagaStore.Write> writes, List<Integer> indexes)
            throws SQLException {
        List<SagaTransition> all = new ArrayList<>(indexes.size());
        for (int index : indexes) {
            all.addAll(writes.get(index).transitions());
        }
        for (int from = 0; from < all.size(); from += MAX_ROWS) {
            List<SagaTransition> chunk = all.subList(from, Math.min(all.size(), from + MAX_ROWS));
            try (PreparedStatement ps = c.prepareStatement(TRANSITION_HEAD + rows(TRANSITION_ROW, chunk.size()))) {
                int p = 1;
                for (SagaTransition transition : chunk) {
                    p = JdbcSagaStore.bindTransition(ps, p, transition);
                }
                ps.executeUpdate();
            }
        }
    }

    private static String rows(String row, int n) {
        StringBuilder sb = new StringBuilder(n * (row.length() + 2));
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(row);
        }
        return sb.toString();
    }
}
