package io.streamsaga.bus;

/**
 * Where a published message landed in the log.
 *
 * @param topic     the topic
 * @param partition the partition (chosen by the message key's hash)
 * @param offset    the offset within the partition
 */
public record RecordPosition(String topic, int partition, long offset) {
}
