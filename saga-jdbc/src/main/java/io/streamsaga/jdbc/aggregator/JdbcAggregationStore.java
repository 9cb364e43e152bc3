package io.streamsaga.jdbc.aggregator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import io.streamsaga.spi.StoredKeys;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * An {@link AggregationStore} in a relational database (tables {@code ss_aggregation_group}, schema version 3, and
 * {@code ss_aggregation_part}, version 8): open groups and tombstones survive a restart of every process, and a
 * restarted aggregator re-arms their deadlines from {@link #withDeadlines}.
 *
 * <p>One row per group (its version, state, deadline) and one row per part (a JSON document, payload base64, numbered
 * in arrival order), so that {@link #append}, which the aggregator adds each part with, writes the group's row and
 * that part's row only: a group of n parts costs n part writes, not n writes of the whole group. The first version
 * is inserted with {@code MERGE ... WHEN NOT MATCHED} (a concurrent second insert loses on the primary key), later
 * versions with {@code UPDATE ... WHERE version = ?}, so of two writers that read the same version exactly one wins,
 * across processes; the part rows are written in the same transaction. {@link #save} writes the parts that changed:
 * none for a change of state, all of them when a part was dropped. A group stored before version 8 keeps its parts
 * in its row's {@code parts} column (a JSON array), read as such after the upgrade: the first write after it moves its
 * parts to rows (once), the column then holding a mark that is no array, so that a node of an earlier version (which
 * reads only that column) finds the group unreadable, and dead-letters a part for it, rather than take the group
 * without its part rows.
 *
 * <p>{@link #find}, {@link #save}, {@link #append}, {@link #delete} and {@link #withDeadlines} refuse with a
 * {@link ConfigurationException}, before any SQL, an aggregator name over 200 characters, a group key over 500, and
 * either holding U+0000 (which PostgreSQL cannot store) or a lone surrogate (which PostgreSQL's driver writes as
 * {@code '?'}: two groups whose keys differ only there would be one); {@link #save} and {@link #append} also refuse
 * a part whose header name holds a lone surrogate (the parts are JSON, which cannot read such a name back: the group
 * could not be read again); in an aggregator's handler the delivery is then
 * dead-lettered, and an aggregator whose name the store refuses fails to build (its build re-arms the deadlines
 * stored under its name). A group whose stored parts do not parse (stored by an earlier version with a lone surrogate
 * in a header name, or corrupted by hand) fails {@link #find} naming it, and is left out of {@link #withDeadlines}
 * (logged at ERROR with its key), so that the aggregator still builds and re-arms the other groups. Thread-safe.
 */
public final class JdbcAggregationStore implements AggregationStore {
    private static final Logger log = LoggerFactory.getLogger(JdbcAggregationStore.class);
    /**
     * The stored group was opened at the given time, as the column keeps it: the column keeps microseconds, and H2
     * compares a parameter with nanoseconds (a group its writer opened at the clock's instant and writes again, as the
     * aggregator releases a group complete on its first part) unrounded, so that the group opened then was not found;
     * cast to the column's type, the parameter is rounded as the insert rounded it, on both databases.
     */
    private static final String SAME_CREATED_AT = " AND created_at = CAST(? AS TIMESTAMP WITH TIME ZONE)";
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
                Row row;
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return Optional.<AggregationGroup>empty();
                    }
                    row = Row.of(rs);
                }
                return Optional.of(read(c, row));
            }
        });
    }

    /**
     * Refuses, before any SQL, a name or key over its column's width (it would be stored cut to a prefix, and not
     * found under its own key) or holding U+0000 or a lone surrogate (PostgreSQL cannot store them as they are, H2
     * can: the two would differ).
     */
    private static void requireStorable(String aggregator, String key) {
        Columns.requireFits(aggregator, StoredKeys.MAX_AGGREGATOR_NAME_LENGTH, "aggregator name", "");
        Columns.requireFits(key, StoredKeys.MAX_GROUP_KEY_LENGTH, "group key", "");
    }

    @Override
    public boolean save(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        if (group.version() < 1) {
            return false;
        }
        List<byte[]> parts = writeParts(group);
        return write(() -> tx.inTransaction(c -> {
            if (group.version() == 1) {
                if (!insert(c, group)) {
                    return false;
                }
                deleteParts(c, group);
                insertParts(c, group, parts, 0);
                return true;
            }
            if (!update(c, group)) {
                return false;
            }
            syncParts(c, group, parts);
            return true;
        }));
    }

    /**
     * {@inheritDoc} Writes the group's row (its version, state and deadline) and one row for the appended part, in
     * one transaction: a cost of the size of that part, whatever the group's size.
     */
    @Override
    public boolean append(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        if (group.version() < 1 || group.size() == 0) {
            return save(group);
        }
        byte[] part = writePart(group.parts().get(group.size() - 1));
        return write(() -> tx.inTransaction(c -> {
            if (group.version() == 1) {
                if (!insert(c, group)) {
                    return false;
                }
                deleteParts(c, group);
            } else if (!update(c, group)) {
                return false;
            } else if (!Arrays.equals(ROWS, partsColumn(c, group))) {
                // stored before version 8 (its parts in its row): moved to rows whole, once
                rewriteParts(c, group, writeParts(group));
                return true;
            }
            insertParts(c, group, List.of(part), group.version() == 1 ? 0 : nextSeq(c, group));
            return true;
        }));
    }

    /**
     * The number of a part added after the stored ones: one more than the highest stored, not the group's size, as
     * the numbers may have a gap (a repair deleted the row of a part that did not parse). The group's row is locked
     * by this transaction's write of it, so no other writer numbers a part of the group at the same time.
     */
    private static int nextSeq(Connection c, AggregationGroup group) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT MAX(seq) FROM ss_aggregation_part WHERE aggregator = ? AND group_key = ?")) {
            ps.setString(1, group.aggregator());
            ps.setString(2, group.key());
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                int max = rs.getInt(1);
                return rs.wasNull() ? 0 : max + 1;
            }
        }
    }

    /** Runs a write, a unique violation (another writer inserted version 1 at the same moment) counting as a lost race. */
    private static boolean write(Supplier<Boolean> write) {
        try {
            return write.get();
        } catch (JdbcException e) {
            if ("23505".equals(e.sqlState())) {
                return false;
            }
            throw e;
        }
    }

    private static boolean insert(Connection c, AggregationGroup g) throws SQLException {
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
            ps.setBytes(6, ROWS);
            return ps.executeUpdate() == 1;
        }
    }

    /**
     * Updates the group's row, not its parts, if its stored version is the one before and it is the same group, opened
     * at the same time: a key's next group, once one was deleted, counts its versions from 1 again. The time is compared
     * as stored ({@link #SAME_CREATED_AT}).
     */
    private static boolean update(Connection c, AggregationGroup g) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE ss_aggregation_group SET version = ?, state = ?,"
                + " deadline = ? WHERE aggregator = ? AND group_key = ? AND version = ?" + SAME_CREATED_AT)) {
            ps.setLong(1, g.version());
            ps.setString(2, g.state().name());
            Sql.setInstant(ps, 3, g.deadline());
            ps.setString(4, g.aggregator());
            ps.setString(5, g.key());
            ps.setLong(6, g.version() - 1);
            Sql.setInstant(ps, 7, g.createdAt());
            return ps.executeUpdate() == 1;
        }
    }

    /** Inserts the rows of {@code parts}, numbered from {@code first}. */
    private static void insertParts(Connection c, AggregationGroup g, List<byte[]> parts, int first) throws SQLException {
        if (parts.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO ss_aggregation_part (aggregator, group_key, seq, part) VALUES (?, ?, ?, ?)")) {
            for (int i = 0; i < parts.size(); i++) {
                ps.setString(1, g.aggregator());
                ps.setString(2, g.key());
                ps.setInt(3, first + i);
                ps.setBytes(4, parts.get(i));
                ps.addBatch();
            }
            ps.executeBatch();
        }
    }

    /**
     * Brings the stored parts of a group whose row was just updated to {@code group}'s: nothing written when they are
     * the same (a change of state), the new ones inserted when the stored ones begin them, else all rewritten (a part
     * dropped), the parts kept in the row by a version before 8 moved to their own rows.
     */
    private void syncParts(Connection c, AggregationGroup group, List<byte[]> parts) throws SQLException {
        byte[] column = partsColumn(c, group);
        if (Arrays.equals(ROWS, column)) {
            List<String> stored = new ArrayList<>();
            for (AggregatedPart part : readParts(c, group.aggregator(), group.key(), column)) {
                stored.add(part.messageId());
            }
            List<String> given = group.parts().stream().map(AggregatedPart::messageId).toList();
            if (stored.size() <= given.size() && given.subList(0, stored.size()).equals(stored)) {
                insertParts(c, group, parts.subList(stored.size(), parts.size()), nextSeq(c, group));
                return;
            }
        }
        rewriteParts(c, group, parts);
    }

    /**
     * Replaces every stored part of the group with {@code parts}, its row marked as keeping none ({@link #ROWS}): a
     * node of a version before 8 then finds the group unreadable rather than read it without its part rows.
     */
    private static void rewriteParts(Connection c, AggregationGroup group, List<byte[]> parts) throws SQLException {
        deleteParts(c, group);
        try (PreparedStatement ps = c.prepareStatement(
                "UPDATE ss_aggregation_group SET parts = ? WHERE aggregator = ? AND group_key = ?")) {
            ps.setBytes(1, ROWS);
            ps.setString(2, group.aggregator());
            ps.setString(3, group.key());
            ps.executeUpdate();
        }
        insertParts(c, group, parts, 0);
    }

    private static void deleteParts(Connection c, AggregationGroup group) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "DELETE FROM ss_aggregation_part WHERE aggregator = ? AND group_key = ?")) {
            ps.setString(1, group.aggregator());
            ps.setString(2, group.key());
            ps.executeUpdate();
        }
    }

    private List<byte[]> writeParts(AggregationGroup group) {
        List<byte[]> parts = new ArrayList<>(group.size());
        for (AggregatedPart part : group.parts()) {
            parts.add(writePart(part));
        }
        return parts;
    }

    private static byte[] partsColumn(Connection c, AggregationGroup group) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT parts FROM ss_aggregation_group WHERE aggregator = ? AND group_key = ?")) {
            ps.setString(1, group.aggregator());
            ps.setString(2, group.key());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getBytes(1) : ROWS;
            }
        }
    }

    @Override
    public boolean delete(String aggregator, String key, long version) {
        requireStorable(aggregator, key);
        return delete(aggregator, key, version, null);
    }

    /** {@inheritDoc} The stored group must be {@code group}: its version, and opened at its time. */
    @Override
    public boolean delete(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        return delete(group.aggregator(), group.key(), group.version(), group.createdAt());
    }

    /** Deletes the group's row at {@code version} (opened at {@code createdAt} unless null) and its part rows. */
    private boolean delete(String aggregator, String key, long version, Instant createdAt) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_aggregation_group WHERE aggregator = ?"
                    + " AND group_key = ? AND version = ?" + (createdAt == null ? "" : SAME_CREATED_AT))) {
                ps.setString(1, aggregator);
                ps.setString(2, key);
                ps.setLong(3, version);
                if (createdAt != null) {
                    Sql.setInstant(ps, 4, createdAt);
                }
                if (ps.executeUpdate() != 1) {
                    return false;
                }
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "DELETE FROM ss_aggregation_part WHERE aggregator = ? AND group_key = ?")) {
                ps.setString(1, aggregator);
                ps.setString(2, key);
                ps.executeUpdate();
            }
            return true;
        });
    }

    /**
     * {@inheritDoc} A group whose parts do not parse is left out, logged at ERROR with its key: it stays in the
     * table, untouched, until repaired or deleted, and the other groups' deadlines are re-armed all the same.
     */
    @Override
    public List<AggregationGroup> withDeadlines(String aggregator) {
        Columns.requireFits(aggregator, StoredKeys.MAX_AGGREGATOR_NAME_LENGTH, "aggregator name", "");
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(SELECT
                    + " WHERE aggregator = ? AND deadline IS NOT NULL ORDER BY deadline")) {
                ps.setString(1, aggregator);
                List<Row> rows = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        rows.add(Row.of(rs));
                    }
                }
                List<AggregationGroup> groups = new ArrayList<>();
                for (Row row : rows) {
                    try {
                        groups.add(read(c, row));
                    } catch (UnreadableParts e) {
                        log.error("aggregator '{}': group '{}' is left out of the deadlines re-armed, its timeout"
                                + " does not fire; it stays in the store until repaired or deleted: {}", aggregator,
                                row.key(), e.getMessage());
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

    /** A group's row as read, before its parts are. */
    private record Row(String aggregator, String key, long version, GroupState state, Instant createdAt,
                       Instant deadline, byte[] partsColumn) {
        static Row of(ResultSet rs) throws SQLException {
            return new Row(rs.getString("aggregator"), rs.getString("group_key"), rs.getLong("version"),
                    GroupState.valueOf(rs.getString("state")), Sql.getInstant(rs, "created_at"),
                    Sql.getInstant(rs, "deadline"), rs.getBytes("parts"));
        }
    }

    private AggregationGroup read(Connection c, Row row) throws SQLException {
        return new AggregationGroup(row.aggregator(), row.key(), row.version(), row.state(),
                readParts(c, row.aggregator(), row.key(), row.partsColumn()), row.createdAt(), row.deadline());
    }

    /**
     * The parts of a group: its part rows in order when its row holds the mark {@link #ROWS}, else (stored before
     * version 8) the JSON array its row holds.
     */
    private List<AggregatedPart> readParts(Connection c, String aggregator, String key, byte[] column) throws SQLException {
        List<AggregatedPart> parts = new ArrayList<>();
        if (!Arrays.equals(ROWS, column)) {
            try {
                JsonNode array = json.readTree(column);
                if (array == null || !array.isArray()) {
                    throw new IOException("the parts column holds neither the parts of a group stored before version 8"
                            + " nor the mark of parts in rows");
                }
                for (JsonNode node : array) {
                    parts.add(readPart(node));
                }
            } catch (IOException | RuntimeException e) { // also a field missing (null), or not an instant
                throw unreadable(aggregator, key, e);
            }
            return parts;
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT part FROM ss_aggregation_part"
                + " WHERE aggregator = ? AND group_key = ? ORDER BY seq")) {
            ps.setString(1, aggregator);
            ps.setString(2, key);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    try {
                        parts.add(readPart(json.readTree(rs.getBytes(1))));
                    } catch (IOException | RuntimeException e) {
                        throw unreadable(aggregator, key, e);
                    }
                }
            }
        }
        return parts;
    }

    private static UnreadableParts unreadable(String aggregator, String key, Exception e) {
        return new UnreadableParts("unreadable parts of aggregation group '" + key + "' of aggregator '" + aggregator
                + "': " + e.getMessage(), e);
    }

    /**
     * The parts column of a group whose parts are rows of {@code ss_aggregation_part} (all groups stored since version
     * 8): not an array, so that a node of an earlier version, which reads only this column, finds the group unreadable
     * (and dead-letters a part for it) rather than take it without its parts.
     */
    private static final byte[] ROWS = "{\"partsIn\":\"ss_aggregation_part\"}".getBytes(StandardCharsets.UTF_8);

    private byte[] writePart(AggregatedPart p) {
        ObjectNode node = json.createObjectNode();
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
        try {
            return json.writeValueAsBytes(node);
        } catch (IOException e) {
            throw new IllegalStateException("an aggregation part cannot be written as JSON", e);
        }
    }

    private static AggregatedPart readPart(JsonNode node) throws IOException {
        Map<String, String> headers = new LinkedHashMap<>();
        node.get("headers").fields().forEachRemaining(e -> headers.put(e.getKey(), e.getValue().asText()));
        return new AggregatedPart(node.get("messageId").asText(), node.get("topic").asText(),
                node.get("type").asText(), node.get("version").asInt(), headers, node.get("payload").binaryValue(),
                Instant.parse(node.get("receivedAt").asText()),
                node.hasNonNull("key") ? node.get("key").asText() : null); // absent in parts stored before
    }
}
