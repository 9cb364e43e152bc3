package io.streamsaga.bus;

import io.streamsaga.message.Message;

/**
 * What a handler knows about the delivery it is handling: the message (with its decoded payload), the
 * topic that matched, the position in the log, the consumer group and the attempt number. Immutable.
 *
 * @param message   the message being handled
 * @param group     the consumer group
 * @param partition the partition of the topic
 * @param offset    the offset within the partition
 * @param attempt   1 for the first delivery attempt, 2 for the first retry, and so on
 */
public record DeliveryContext(Message message, String group, int partition, long offset, int attempt) {

    /** The concrete topic the message came from (useful under a wildcard subscription). */
    public String topic() {
        return message.topic();
    }
}
