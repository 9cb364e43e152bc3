package io.streamsaga.jdbc.outbox;

import java.util.Objects;

/**
 * A row of the outbox that holds no message this library can build (a poison row: headers that are no JSON object of
 * strings, a blank event type; written by the application's own SQL, a trigger say, or corrupted by hand), as
 * {@link JdbcOutbox#unreadableRows} lists it: the columns every row has, as stored, and why it makes no message. No
 * message is made up for it. An {@link OutboxRelay} that meets such a row marks it {@link OutboxRow.Status#FAILED}
 * with the reason as its last error; an operator repairs or deletes it. Immutable.
 *
 * @param sequence  the row's position
 * @param messageId its message id, as stored
 * @param topic     its topic, as stored
 * @param status    its delivery state
 * @param attempts  failed publish attempts so far (a relay counts the one that found the row unreadable)
 * @param lastError the last publish error as stored (a relay's reason for marking the row FAILED), or null
 * @param reason    why the row makes no message, as a relay reports it
 */
public record UnreadableOutboxRow(long sequence, String messageId, String topic, OutboxRow.Status status, int attempts,
                                  String lastError, String reason) {

    public UnreadableOutboxRow {
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(reason, "reason");
    }
}
