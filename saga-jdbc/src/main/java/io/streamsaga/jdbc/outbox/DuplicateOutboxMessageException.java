package io.streamsaga.jdbc.outbox;

import io.streamsaga.StreamSagaException;
import io.streamsaga.jdbc.JdbcException;

import java.sql.SQLException;

/**
 * A message could not be written to the outbox because a row of the outbox holds its message id already (the
 * outbox's message ids are unique: SQL state 23505 on {@code ss_outbox.message_id}): the same message written a
 * second time, or another message given that id. Thrown by {@link JdbcOutbox#append(java.sql.Connection,
 * io.streamsaga.message.Message)}. {@code JdbcSagaStore} tells it apart from a saga id already stored
 * ({@code ConcurrentSagaUpdateException}) and throws a {@link io.streamsaga.saga.spi.SagaWriteRefusedException} with this
 * as its cause, for the engine not to retry the same write: a saga's start fails with it, nothing stored, and a saga
 * whose later write meets it is left needing attention (the needs-attention write whose own lifecycle event has the id
 * is stored without that event). The write's transaction is rolled back. Not retriable: the same write meets the same row again. Immutable.
 */
public final class DuplicateOutboxMessageException extends JdbcException {
    private static final long serialVersionUID = 1L;
    private final String messageId;
    private final String topic;

    /**
     * @param messageId the message id the outbox holds already
     * @param topic     the topic of the message refused
     * @param cause     the database's unique violation
     */
    public DuplicateOutboxMessageException(String messageId, String topic, SQLException cause) {
        super("cannot append message " + StreamSagaException.quote(messageId) + " (topic " + topic
                + ") to the outbox: a row of the outbox has this message id already (message ids are unique there:"
                + " the message was written before, or another one has its id)", cause);
        this.messageId = messageId;
        this.topic = topic;
    }

    /** The message id the outbox holds already. */
    public String messageId() {
        return messageId;
    }

    /** The topic of the message refused. */
    public String topic() {
        return topic;
    }
}
