package io.streamsaga.jdbc.aggregator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.jdbc.internal.SchemaCheck;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * An {@link AggregationStore} in a relational database (table {@code ss_aggregation_group}, schema
 * version 3): open groups and tombstones survive a restart of every process, and a restarted aggregator
 * re-arms their deadlines from {@link #withDeadlines}.
 *
 * <p>One row per group, its parts kept as one JSON document (payloads base64), so a save is one
 * statement: the first version is inserted with {@code MERGE ... WHEN NOT MATCHED} (a concurrent second
 * insert loses on the primary key), later versions with {@code UPDATE ... WHERE version = ?}, so of two
 * writers that read the same version exactly one wins, across processes.
 *
 * <p>{@link #find}, {@link #save}, {@link #delete} and {@link #withDeadlines} refuse with a
 * {@link ConfigurationException}, before any SQL, an aggregator name over 200 characters, a group key over 500, and
 * either holding U+0000 (which PostgreSQL cannot store) or a lone surrogate (which PostgreSQL's driver writes as
 * {@code '?'}: two groups whose keys differ only there would be one); {@link #save} also refuses a part whose header
 * name holds a lone surrogate (the parts are JSON, which cannot read such a name back: the group could not be read
 * again); in an aggregator's handler the delivery is then
 * dead-lettered, and an aggregator whose name the store refuses fails to build (its build re-arms the deadlines
 * stored under its name). A group whose stored parts do not parse (stored by an earlier version with a lone surrogate
 * in a header name, or corrupted by hand) fails {@link #find} naming it, and is left out of {@link #withDeadlines}
 * (logged at ERROR with its key), so that the aggregator still builds and re-arms the other groups. Thread-safe.
 */
public final class JdbcAggregationStore implements AggregationStore {
    private static final Logger log = LoggerFactory.getLogger(JdbcAggregationStore.class);
    private final JdbcTransactions tx;
    private final ObjectMapper json = new ObjectMapper();

    private JdbcAggregationStore(DataSource dataSource) {
        this.tx = new JdbcTransactions(dataSource);
    }

    /** A store over the tables of {@code dataSource} (created by {@code JdbcSchema.migrate()}). */
    public static JdbcAggregationStore create(DataSource dataSource) {
        Objects.requireNonNull(dataSource, "dataSource");
        SchemaCheck.requireMigrated(dataSource, "JdbcAggregationStore");
        return new JdbcAggregationStore(dataSource);
    }

    @Override
    public Optional<AggregationGroup> find(String aggregator, String key) {
        requireStorable(aggregator, key);
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(SELECT + " WHERE aggregator = ? AND group_key = ?")) {
                ps.setString(1, aggregator);
                ps.setString(2, key);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(read(rs)) : Optional.<AggregationGroup>empty();
                }
            }
        });
    }

    /**
     * Refuses, before any SQL, a name or key over its column's width (it would be stored cut to a prefix, and not
     * found under its own key) or holding U+0000 or a lone surrogate (PostgreSQL cannot store them as they are, H2
     * can: the two would differ).
     */
    private static void requireStorable(String aggregator, String key) {
        Columns.requireFits(aggregator, 200, "aggregator name", "");
        Columns.requireFits(key, 500, "group key", "");
    }

    @Override
    public boolean save(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        if (group.version() < 1) {
            return false;
        }
        byte[] parts = writeParts(group.parts());
        try {
            return tx.inTransaction(c -> group.version() == 1 ? insert(c, group, parts) : update(c, group, parts));
        } catch (JdbcException e) {
            if ("23505".equals(e.sqlState())) {
                return false; // another writer inserted version 1 at the same moment
            }
            throw e;
        }
    }

    private static boolean insert(Connection c, AggregationGroup g, byte[] parts) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("MERGE INTO ss_aggregation_group t USING (VALUES"
                + " (CAST(? AS VARCHAR(200)), CAST(? AS VARCHAR(500)))) AS s(aggregator, group_key)"
                + " ON t.aggregator = s.aggregator AND t.group_key = s.group_key"
                + " WHEN NOT MATCHED THEN INSERT (aggregator, group_key, version, state, created_at, deadline, parts)"
                + " VALUES (s.aggregator, s.group_key, 1, ?, ?, ?, ?)")) {
            ps.setString(1, g.aggregator());
            ps.setString(2, g.key());
            ps.setString(3, g.state().name());
            Sql.setInstant(ps, 4, g.createdAt());
            Sql.setInstant(ps, 5, g.deadline());
            ps.setBytes(6, parts);
            return ps.executeUpdate() == 1;
        }
    }

    private static boolean update(Connection c, AggregationGroup g, byte[] parts) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE ss_aggregation_group SET version = ?, state = ?,"
                + " created_at = ?, deadline = ?, parts = ? WHERE aggregator = ? AND group_key = ? AND version = ?")) {
            ps.setLong(1, g.version());
            ps.setString(2, g.state().name());
            Sql.setInstant(ps, 3, g.createdAt());
            Sql.setInstant(ps, 4, g.deadline());
            ps.setBytes(5, parts);
            ps.setString(6, g.aggregator());
            ps.setString(7, g.key());
            ps.setLong(8, g.version() - 1);
            return ps.executeUpdate() == 1;
        }
    }

    @Override
    public boolean delete(String aggregator, String key, long version) {
        requireStorable(aggregator, key);
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "DELETE FROM ss_aggregation_group WHERE aggregator = ? AND group_key = ? AND version = ?")) {
                ps.setString(1, aggregator);
                ps.setString(2, key);
                ps.setLong(3, version);
                return ps.executeUpdate() == 1;
            }
        });
    }

    /**
     * {@inheritDoc} A group whose parts do not parse is left out, logged at ERROR with its key: it stays in the
     * table, untouched, until repaired or deleted, and the other groups' deadlines are re-armed all the same.
     */
    @Override
    public List<AggregationGroup> withDeadlines(String aggregator) {
        Columns.requireFits(aggregator, 200, "aggregator name", "");
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(SELECT
                    + " WHERE aggregator = ? AND deadline IS NOT NULL ORDER BY deadline")) {
                ps.setString(1, aggregator);
                List<AggregationGroup> groups = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        try {
                            groups.add(read(rs));
                        } catch (UnreadableParts e) {
                            log.error("aggregator '{}': group '{}' is left out of the deadlines re-armed, its timeout"
                                    + " does not fire; it stays in the store until repaired or deleted: {}", aggregator,
                                    rs.getString("group_key"), e.getMessage());
                        }
                    }
                }
                return groups;
            }
        });
    }

    private static final String SELECT = "SELECT aggregator, group_key, version, state, created_at, deadline, parts"
            + " FROM ss_aggregation_group";

    /** A group's stored parts that do not parse (a failure of the row, not of the database). */
    private static final class UnreadableParts extends SQLException {
        private static final long serialVersionUID = 1L;

        UnreadableParts(String message, Exception cause) {
            super(message, cause);
        }
    }

    private AggregationGroup read(ResultSet rs) throws SQLException {
        String aggregator = rs.getString("aggregator");
        String key = rs.getString("group_key");
        return new AggregationGroup(aggregator, key, rs.getLong("version"),
                GroupState.valueOf(rs.getString("state")), readParts(aggregator, key, rs.getBytes("parts")),
                Sql.getInstant(rs, "created_at"), Sql.getInstant(rs, "deadline"));
    }

    private byte[] writeParts(List<AggregatedPart> parts) {
        ArrayNode array = json.createArrayNode();
        for (AggregatedPart p : parts) {
            ObjectNode node = array.addObject();
            node.put("messageId", p.messageId());
            node.put("topic", p.topic());
            node.put("type", p.type());
            node.put("version", p.version());
            ObjectNode headers = node.putObject("headers");
            p.headers().forEach((name, value) -> {
                // written as an escape that Jackson reads back in a value but refuses in a field name
                Columns.requireNoLoneSurrogateInName(name, "header name", " of an aggregation part");
                headers.put(name, value);
            });
            node.put("payload", p.payload());
            node.put("receivedAt", p.receivedAt().toString());
            if (p.key() != null) {
                node.put("key", p.key());
            }
        }
        try {
            return json.writeValueAsBytes(array);
        } catch (IOException e) {
            throw new IllegalStateException("aggregation parts cannot be written as JSON", e);
        }
    }

    private List<AggregatedPart> readParts(String aggregator, String key, byte[] bytes) throws UnreadableParts {
        try {
            List<AggregatedPart> parts = new ArrayList<>();
            for (JsonNode node : json.readTree(bytes)) {
                Map<String, String> headers = new LinkedHashMap<>();
                node.get("headers").fields().forEachRemaining(e -> headers.put(e.getKey(), e.getValue().asText()));
                parts.add(new AggregatedPart(node.get("messageId").asText(), node.get("topic").asText(),
                        node.get("type").asText(), node.get("version").asInt(), headers, node.get("payload").binaryValue(),
                        Instant.parse(node.get("receivedAt").asText()),
                        node.hasNonNull("key") ? node.get("key").asText() : null)); // absent in parts stored before
            }
            return parts;
        } catch (IOException | RuntimeException e) { // also a field missing (null), or not an instant
            throw new UnreadableParts("unreadable parts of aggregation group '" + key + "' of aggregator '" + aggregator
                    + "': " + e.getMessage(), e);
        }
    }
}
