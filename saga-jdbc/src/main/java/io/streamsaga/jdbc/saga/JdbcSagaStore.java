package io.streamsaga.jdbc.saga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;

import javax.sql.DataSource;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A {@link SagaStore} in a relational database (tables {@code ss_saga} and {@code ss_saga_transition},
 * schema version 4): every saga survives a crash of every process, and a new orchestrator over the same
 * database resumes or compensates the unfinished ones.
 *
 * <p>Each {@link #insert} and {@link #update} is one transaction holding the instance row and its
 * transition. Updates are version-checked ({@code UPDATE ... WHERE version = ?}), so of two orchestrators
 * driving one saga only one succeeds; the other gets {@link ConcurrentSagaUpdateException}. The saga data
 * is written as JSON under the instance's {@code dataType} (never a Java class name) with the configured
 * mapper and read back as a {@link JsonNode}, which the engine binds to the definition's data class.
 * Finished sagas are deleted in bounded batches ({@link #deleteFinishedBefore(Instant, int)}). Thread-safe.
 */
public final class JdbcSagaStore implements SagaStore {
    private static final String SELECT = "SELECT saga_id, saga_name, definition_version, business_key, data_type, data,"
            + " status, steps, failure_step, failure_class, failure_message, comp_failure_step, comp_failure_class,"
            + " comp_failure_message, created_at, updated_at, version FROM ss_saga";
    private static final int DEFAULT_BATCH = 500;

    private final JdbcTransactions tx;
    private final ObjectMapper mapper;
    private final GroupCommit groupCommit;

    private JdbcSagaStore(Builder b) {
        this.tx = new JdbcTransactions(b.dataSource);
        this.mapper = b.mapper;
        this.groupCommit = b.groupCommitBatch > 1 ? new GroupCommit(tx, b.groupCommitBatch) : null;
    }

    /** A store writing saga data with the library's default JSON mapper (records, ISO dates). */
    public static JdbcSagaStore create(DataSource dataSource) {
        return builder(dataSource).build();
    }

    /** A store writing saga data with {@code mapper} (give it the orchestrator's mapper). */
    public static JdbcSagaStore create(DataSource dataSource, ObjectMapper mapper) {
        return builder(dataSource).mapper(mapper).build();
    }

    /** Starts configuring a store (mapper, group commit). */
    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /** Runs one write: in its own transaction, or batched with concurrent writes under group commit. */
    private void write(JdbcTransactions.VoidWork work) {
        if (groupCommit == null) {
            tx.run(work);
        } else {
            groupCommit.submit(work);
        }
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        Objects.requireNonNull(instance, "instance");
        Objects.requireNonNull(transition, "transition");
        byte[] data = writeData(instance);
        byte[] steps = writeSteps(instance.steps());
        try {
            write(c -> {
                try (PreparedStatement ps = c.prepareStatement("MERGE INTO ss_saga t USING (VALUES (CAST(? AS VARCHAR(200))))"
                        + " AS s(saga_id) ON t.saga_id = s.saga_id WHEN NOT MATCHED THEN INSERT (saga_id, saga_name,"
                        + " definition_version, business_key, data_type, data, status, steps, failure_step, failure_class,"
                        + " failure_message, comp_failure_step, comp_failure_class, comp_failure_message, created_at,"
                        + " updated_at, version) VALUES (s.saga_id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
                    ps.setString(1, instance.sagaId());
                    int i = bindColumns(ps, 2, instance, data, steps);
                    Sql.setInstant(ps, i++, instance.createdAt());
                    Sql.setInstant(ps, i++, instance.updatedAt());
                    ps.setLong(i, instance.version());
                    if (ps.executeUpdate() != 1) {
                        throw new ConcurrentSagaUpdateException(instance.sagaId(), 0, storedVersion(c, instance.sagaId()));
                    }
                }
                appendTransition(c, transition);
            });
        } catch (JdbcException e) {
            if ("23505".equals(e.sqlState())) {
                throw new ConcurrentSagaUpdateException(instance.sagaId(), 0, 1);
            }
            throw e;
        }
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        Objects.requireNonNull(updated, "updated");
        Objects.requireNonNull(transition, "transition");
        byte[] data = writeData(updated);
        byte[] steps = writeSteps(updated.steps());
        write(c -> {
            try (PreparedStatement ps = c.prepareStatement("UPDATE ss_saga SET saga_name = ?, definition_version = ?,"
                    + " business_key = ?, data_type = ?, data = ?, status = ?, steps = ?, failure_step = ?,"
                    + " failure_class = ?, failure_message = ?, comp_failure_step = ?, comp_failure_class = ?,"
                    + " comp_failure_message = ?, updated_at = ?, version = ? WHERE saga_id = ? AND version = ?")) {
                int i = bindColumns(ps, 1, updated, data, steps);
                Sql.setInstant(ps, i++, updated.updatedAt());
                ps.setLong(i++, updated.version());
                ps.setString(i++, updated.sagaId());
                ps.setLong(i, updated.version() - 1);
                if (ps.executeUpdate() != 1) {
                    throw new ConcurrentSagaUpdateException(updated.sagaId(), updated.version() - 1,
                            storedVersion(c, updated.sagaId()));
                }
            }
            appendTransition(c, transition);
        });
    }

    /** Binds saga_name ... comp_failure_message from {@code first}; returns the next parameter index. */
    private static int bindColumns(PreparedStatement ps, int first, SagaInstance s, byte[] data, byte[] steps)
            throws SQLException {
        int i = first;
        ps.setString(i++, s.sagaName());
        ps.setInt(i++, s.definitionVersion());
        ps.setString(i++, s.businessKey());
        ps.setString(i++, s.dataType());
        ps.setBytes(i++, data);
        ps.setString(i++, s.status().name());
        ps.setBytes(i++, steps);
        i = bindFailure(ps, i, s.failure());
        return bindFailure(ps, i, s.compensationFailure());
    }

    private static int bindFailure(PreparedStatement ps, int i, SagaFailure failure) throws SQLException {
        ps.setString(i++, failure == null ? null : failure.step());
        ps.setString(i++, failure == null ? null : failure.errorClass());
        ps.setString(i++, failure == null ? null : truncate(failure.message(), 4000));
        return i;
    }

    private static long storedVersion(Connection c, String sagaId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT version FROM ss_saga WHERE saga_id = ?")) {
            ps.setString(1, sagaId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : 0;
            }
        }
    }

    private static void appendTransition(Connection c, SagaTransition t) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO ss_saga_transition (saga_id, version, at, type, step,"
                + " attempt, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")) {
            ps.setString(1, t.sagaId());
            ps.setLong(2, t.version());
            Sql.setInstant(ps, 3, t.at());
            ps.setString(4, t.type().name());
            ps.setString(5, t.step());
            ps.setInt(6, t.attempt());
            ps.setString(7, truncate(t.detail(), 4000));
            ps.executeUpdate();
        }
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        List<SagaInstance> found = query(SELECT + " WHERE saga_id = ?", sagaId);
        return found.isEmpty() ? Optional.empty() : Optional.of(found.get(0));
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        return query(SELECT + " WHERE business_key = ? ORDER BY created_at, saga_id", businessKey);
    }

    @Override
    public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
        if (statuses.isEmpty()) {
            return List.of();
        }
        return query(SELECT + " WHERE status IN (" + placeholders(statuses.size()) + ") ORDER BY created_at, saga_id",
                statuses.stream().map(Enum::name).toArray());
    }

    @Override
    public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
        return query(SELECT + " WHERE status IN ('RUNNING', 'COMPENSATING') AND created_at < ? ORDER BY created_at, saga_id",
                createdBefore);
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT saga_id, version, at, type, step, attempt, detail"
                    + " FROM ss_saga_transition WHERE saga_id = ? ORDER BY seq")) {
                ps.setString(1, sagaId);
                List<SagaTransition> result = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        result.add(new SagaTransition(rs.getString("saga_id"), rs.getLong("version"),
                                Sql.getInstant(rs, "at"), TransitionType.valueOf(rs.getString("type")),
                                rs.getString("step"), rs.getInt("attempt"), rs.getString("detail")));
                    }
                }
                return result;
            }
        });
    }

    /** Deletes every finished saga last updated before {@code cutoff}, batch after bounded batch. */
    @Override
    public int deleteFinishedBefore(Instant cutoff) {
        int total = 0;
        while (true) {
            int deleted = deleteFinishedBefore(cutoff, DEFAULT_BATCH);
            total += deleted;
            if (deleted < DEFAULT_BATCH) {
                return total;
            }
        }
    }

    /**
     * Deletes at most {@code maxSagas} finished sagas (completed, compensated, resolved) last updated before
     * {@code cutoff}, oldest first, with their history, in one short transaction; returns how many.
     */
    public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
        ConfigurationException.require(maxSagas > 0, "maxSagas must be positive, but was %s", maxSagas);
        return tx.inTransaction(c -> {
            List<String> ids = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT saga_id FROM ss_saga WHERE status IN"
                    + " ('COMPLETED', 'COMPENSATED', 'RESOLVED') AND updated_at < ? ORDER BY updated_at LIMIT ? FOR UPDATE")) {
                Sql.setInstant(ps, 1, cutoff);
                ps.setInt(2, maxSagas);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        ids.add(rs.getString(1));
                    }
                }
            }
            if (ids.isEmpty()) {
                return 0;
            }
            String in = " WHERE saga_id IN (" + placeholders(ids.size()) + ")";
            for (String table : List.of("ss_saga_transition", "ss_saga")) {
                try (PreparedStatement ps = c.prepareStatement("DELETE FROM " + table + in)) {
                    for (int i = 0; i < ids.size(); i++) {
                        ps.setString(i + 1, ids.get(i));
                    }
                    ps.executeUpdate();
                }
            }
            return ids.size();
        });
    }

    private List<SagaInstance> query(String sql, Object... params) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                for (int i = 0; i < params.length; i++) {
                    if (params[i] instanceof Instant instant) {
                        Sql.setInstant(ps, i + 1, instant);
                    } else {
                        ps.setObject(i + 1, params[i], Types.VARCHAR);
                    }
                }
                List<SagaInstance> result = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        result.add(read(rs));
                    }
                }
                return result;
            }
        });
    }

    private SagaInstance read(ResultSet rs) throws SQLException {
        byte[] data = rs.getBytes("data");
        JsonNode tree;
        try {
            tree = data == null ? null : mapper.readTree(data);
        } catch (IOException e) {
            throw new SQLException("unreadable data of saga " + rs.getString("saga_id") + ": " + e.getMessage(), e);
        }
        return new SagaInstance(rs.getString("saga_id"), rs.getString("saga_name"), rs.getInt("definition_version"),
                rs.getString("business_key"), rs.getString("data_type"), tree == null || tree.isNull() ? null : tree,
                SagaStatus.valueOf(rs.getString("status")), readSteps(rs.getBytes("steps")),
                readFailure(rs, "failure_"), readFailure(rs, "comp_failure_"), Sql.getInstant(rs, "created_at"),
                Sql.getInstant(rs, "updated_at"), rs.getLong("version"));
    }

    private static SagaFailure readFailure(ResultSet rs, String prefix) throws SQLException {
        String errorClass = rs.getString(prefix + "class");
        return errorClass == null ? null
                : new SagaFailure(rs.getString(prefix + "step"), errorClass, rs.getString(prefix + "message"));
    }

    private byte[] writeData(SagaInstance instance) {
        try {
            return mapper.writeValueAsBytes(instance.data());
        } catch (IOException e) {
            throw new ConfigurationException("data of saga " + instance.sagaId() + " (type '" + instance.dataType()
                    + "') cannot be written as JSON: " + e.getMessage());
        }
    }

    private byte[] writeSteps(List<StepState> steps) {
        ArrayNode array = mapper.createArrayNode();
        for (StepState step : steps) {
            ObjectNode node = array.addObject();
            node.put("name", step.name());
            node.put("status", step.status().name());
            node.put("attempts", step.attempts());
            node.put("compensationAttempts", step.compensationAttempts());
            node.put("dueAt", step.dueAt() == null ? null : step.dueAt().toString());
        }
        try {
            return mapper.writeValueAsBytes(array);
        } catch (IOException e) {
            throw new IllegalStateException("step states cannot be written as JSON", e);
        }
    }

    private List<StepState> readSteps(byte[] bytes) throws SQLException {
        try {
            List<StepState> steps = new ArrayList<>();
            for (JsonNode node : mapper.readTree(bytes)) {
                JsonNode due = node.get("dueAt");
                steps.add(new StepState(node.get("name").asText(), StepStatus.valueOf(node.get("status").asText()),
                        node.get("attempts").asInt(), node.get("compensationAttempts").asInt(),
                        due == null || due.isNull() ? null : Instant.parse(due.asText())));
            }
            return steps;
        } catch (IOException e) {
            throw new SQLException("unreadable step states: " + e.getMessage(), e);
        }
    }

    private static String placeholders(int n) {
        return java.util.stream.Stream.generate(() -> "?").limit(n).collect(Collectors.joining(", "));
    }

    private static String truncate(String s, int max) {
        return s == null || s.length() <= max ? s : s.substring(0, max);
    }

    /** Builds a {@link JdbcSagaStore}; not thread-safe. */
    public static final class Builder {
        private final DataSource dataSource;
        private ObjectMapper mapper = JsonEventCodec.defaultMapper();
        private int groupCommitBatch = 1;

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /** The JSON mapper for saga data (give it the orchestrator's mapper). */
        public Builder mapper(ObjectMapper mapper) {
            this.mapper = Objects.requireNonNull(mapper, "mapper");
            return this;
        }

        /**
         * Group commit: concurrent {@code insert}/{@code update} calls (from different sagas, on different
         * threads) are written together, up to {@code maxBatch} per transaction, so one commit and one log
         * flush serve many transitions. Each call still returns only after its transition is committed, and
         * a version conflict fails only its own call. 1 (the default) writes each in its own transaction.
         */
        public Builder groupCommit(int maxBatch) {
            ConfigurationException.require(maxBatch >= 1, "group commit batch must be 1 or more, but was %s", maxBatch);
            this.groupCommitBatch = maxBatch;
            return this;
        }

        public JdbcSagaStore build() {
            return new JdbcSagaStore(this);
        }
    }
}
