package io.streamsaga.jdbc.internal;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.outbox.DuplicateOutboxMessageException;
import io.streamsaga.message.Message;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.Objects;

/**
 * Writes one row of {@code ss_outbox} in the caller's transaction, as {@code JdbcOutbox} does and as
 * {@code JdbcSagaStore} does for its own outbox rows (without a second schema check, its own having run).
 * Thread-safe.
 */
public final class OutboxWriter {
    /** The widths of the columns message_id, topic and event_type, and message_key (schema version 6). */
    private static final int MAX_ID_LENGTH = 500;
    private static final int MAX_NAME_LENGTH = 255;
    private static final int MAX_KEY_LENGTH = 1000;
    /** The unique key on {@code message_id}, whatever it is named. */
    private static final Sql.UniqueKey MESSAGE_ID_KEY = new Sql.UniqueKey("ss_outbox", "message_id", "ss_outbox_message_id_key");

    private final EventCodec codec;
    private final ObjectMapper json = new ObjectMapper();

    /** A writer encoding event payloads with {@code codec} (byte payloads are written as they are). */
    public OutboxWriter(EventCodec codec) {
        this.codec = Objects.requireNonNull(codec, "codec");
    }

    /**
     * Inserts {@code message} as a pending row.
     *
     * @throws ConfigurationException before any SQL when a value does not fit its column
     * @throws DuplicateOutboxMessageException when a row of the outbox has the message's id already
     * @throws JdbcException          when the insert fails otherwise
     */
    public void write(Connection connection, Message message) {
        TopicPattern.requireTopicName(message.topic());
        requireFits(message);
        byte[] payload = message.payload() == null ? null
                : message.payload() instanceof byte[] bytes ? bytes : codec.encode(message.payload());
        String headers;
        try {
            headers = headers(message);
        } catch (JsonProcessingException e) {
            throw new ConfigurationException("headers of message " + message.id() + " cannot be written: " + e);
        }
        try (PreparedStatement ps = connection.prepareStatement(
                "INSERT INTO ss_outbox (message_id, topic, message_key, event_type, event_version, payload, headers,"
                        + " created_at, status, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'PENDING', 0)")) {
            ps.setString(1, message.id());
            ps.setString(2, message.topic());
            ps.setString(3, message.key());
            ps.setString(4, message.type());
            ps.setInt(5, message.version());
            ps.setBytes(6, payload);
            ps.setString(7, headers);
            Sql.setInstant(ps, 8, message.timestamp());
            ps.executeUpdate();
        } catch (SQLException e) {
            if (MESSAGE_ID_KEY.violatedBy(e.getSQLState(), e.getMessage())) { // not seq's, say
                throw new DuplicateOutboxMessageException(message.id(), message.topic(), e);
            }
            throw JdbcException.of("cannot append message " + message.id() + " to the outbox", e);
        }
    }

    /**
     * The headers as JSON text. Jackson writes a NUL as the escape {@code \u0000}, but a lone surrogate (in a
     * correlation id, say) as it is, which PostgreSQL's driver would send as {@code '?'} (H2 keeps it): such headers
     * are written as Jackson's UTF-8 form, which escapes every surrogate ({@code \uD800}), so they read back as they
     * were on both databases. Other headers keep the plain form (no second serialisation on the usual path). A header
     * name with one is refused before any SQL: Jackson refuses to read that escape in a field name, so the row could
     * never be read (every relay batch failed on it, and no later message was published).
     */
    private String headers(Message message) throws JsonProcessingException {
        String text = json.writeValueAsString(message.headers());
        if (Columns.firstUnstorable(text) < 0) {
            return text;
        }
        for (String name : message.headers().keySet()) {
            Columns.requireNoLoneSurrogateInName(name, "header name", " for the outbox");
        }
        return new String(json.writeValueAsBytes(message.headers()), StandardCharsets.UTF_8);
    }

    /**
     * Refuses, up front (a builder's topic), a topic every write of a message to it would be refused for: no legal
     * topic name (blank, U+0000 or another character a transport does not take) or over its column's width.
     *
     * @return {@code topic}
     */
    public static String requireTopic(String topic, String what) {
        TopicPattern.requireTopicName(topic);
        Columns.requireFits(topic, MAX_NAME_LENGTH, what, " for the outbox");
        return topic;
    }

    /**
     * Refuses a value longer than its column (schema version 6) or holding U+0000 or a lone surrogate before the
     * INSERT: the database would fail the statement (SQL state 22001, or 22021 for a NUL on PostgreSQL only), a
     * {@link JdbcException} that on PostgreSQL also aborts the caller's transaction, for a message that can never be
     * written, and PostgreSQL's driver would write a lone surrogate as {@code '?'} (two ids differing only there
     * would be one). Header values need no check: the column holds them as JSON, where both are escapes; a header
     * name with a lone surrogate is refused by {@link #headers}.
     */
    private static void requireFits(Message message) {
        Columns.requireFits(message.id(), MAX_ID_LENGTH, "message id", " for the outbox");
        Columns.requireFits(message.topic(), MAX_NAME_LENGTH, "topic", " for the outbox");
        Columns.requireFits(message.key(), MAX_KEY_LENGTH, "message key", " for the outbox");
        Columns.requireFits(message.type(), MAX_NAME_LENGTH, "event type", " for the outbox");
    }
}
