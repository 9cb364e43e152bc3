package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.internal.Sql;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/** Reads outbox rows, and purges sent ones; shared by the outbox and its relay. */
final class OutboxRows {
    static final String SELECT = "SELECT seq, message_id, topic, message_key, event_type, event_version, payload,"
            + " headers, created_at, status, attempts, last_error FROM ss_outbox";

    private OutboxRows() {
    }

    /**
     * Deletes at most {@code maxRows} rows sent before {@code sentBefore}, oldest first, in a transaction of its own
     * ({@link JdbcOutbox#purgeSent}, and the relay's scheduled purge); returns how many.
     */
    static int purgeSent(JdbcTransactions tx, Instant sentBefore, int maxRows) {
        Objects.requireNonNull(sentBefore, "sentBefore"); // as NULL in SQL it would match no row: nothing purged
        ConfigurationException.require(maxRows > 0, "maxRows must be positive, but was %s", maxRows);
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_outbox WHERE seq IN (SELECT seq FROM ss_outbox"
                    + " WHERE status = 'SENT' AND sent_at < ? ORDER BY seq LIMIT ?)")) {
                Sql.setInstant(ps, 1, sentBefore);
                ps.setInt(2, maxRows);
                return ps.executeUpdate();
            } catch (SQLException e) {
                throw JdbcException.of("cannot purge sent outbox rows", e);
            }
        });
    }

    /** A row that holds no message this library can build: its headers are no JSON object of strings, say. */
    static final class UnreadableRow extends SQLException {
        private static final long serialVersionUID = 1L;

        UnreadableRow(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Why the row {@code sequence} makes no message: its values are refused by {@link Message} ({@code e}). */
    static UnreadableRow unreadable(long sequence, RuntimeException e) {
        return new UnreadableRow("unreadable outbox row " + sequence + ": " + e, e);
    }

    /**
     * Reads the row at {@code rs}'s cursor.
     *
     * @throws UnreadableRow     when its headers cannot be read
     * @throws RuntimeException  when its values make no message ({@link Message} refuses them)
     * @throws SQLException      when the database fails
     */
    static OutboxRow read(ResultSet rs, ObjectMapper json) throws SQLException {
        Map<String, String> headers;
        try {
            headers = json.readValue(rs.getString("headers"), JdbcOutbox.HEADERS);
        } catch (JsonProcessingException e) {
            throw new UnreadableRow("unreadable headers in outbox row " + rs.getLong("seq") + ": " + e.getMessage(), e);
        }
        if (headers.containsValue(null) || !java.util.Collections.disjoint(headers.keySet(), MessageHeaders.FIELDS)) {
            // Written by a version whose Message took a null header value, or a header named after the id, type or
            // version; a Message now refuses both. A null value always meant no header, and the row's columns always
            // gave the id, type and version (Kafka dropped such a header): dropped, rather than the row unreadable,
            // marked FAILED and never sent.
            headers = new java.util.LinkedHashMap<>(headers);
            headers.values().removeIf(java.util.Objects::isNull);
            headers.keySet().removeAll(MessageHeaders.FIELDS);
        }
        Message message = new Message(rs.getString("message_id"), rs.getString("topic"), rs.getString("message_key"),
                rs.getString("event_type"), rs.getInt("event_version"), rs.getBytes("payload"), headers,
                Sql.getInstant(rs, "created_at"));
        return new OutboxRow(rs.getLong("seq"), message, OutboxRow.Status.valueOf(rs.getString("status")),
                rs.getInt("attempts"), rs.getString("last_error"));
    }
}
