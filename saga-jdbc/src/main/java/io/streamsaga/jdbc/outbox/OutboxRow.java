package io.streamsaga.jdbc.outbox;

import io.streamsaga.message.Message;

import java.util.Objects;

/**
 * A message kept in the outbox table, with its position and delivery state. A row that holds no message this library
 * can build is no {@code OutboxRow}: {@link JdbcOutbox#rows} leaves it out and {@link JdbcOutbox#unreadableRows} lists
 * it as an {@link UnreadableOutboxRow}.
 *
 * @param sequence  the row's position; the relay publishes in this order
 * @param message   the message, with its payload as encoded bytes
 * @param status    delivery state
 * @param attempts  failed publish attempts so far
 * @param lastError the last publish error (at most 2000 characters, a U+0000 or lone surrogate in it stored as
 *                  U+FFFD), or null
 */
public record OutboxRow(long sequence, Message message, Status status, int attempts, String lastError) {

    public OutboxRow {
        Objects.requireNonNull(message, "message");
        Objects.requireNonNull(status, "status");
    }

    /** Delivery state of an outbox row. */
    public enum Status {
        /** Written, not yet acknowledged by the transport. */
        PENDING,
        /** Acknowledged by the transport. */
        SENT,
        /** Rejected by the transport with a non-retriable error; kept for an operator, never dropped. */
        FAILED
    }
}
