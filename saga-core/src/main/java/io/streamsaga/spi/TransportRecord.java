package io.streamsaga.spi;

import io.streamsaga.message.Message;

/**
 * A message as a transport delivers it to one consumer group, with its log position.
 *
 * @param message   the message; payload in the transport's form (bytes, or the object in memory)
 * @param group     the consumer group it is delivered to
 * @param partition the partition
 * @param offset    the offset within the partition
 */
public record TransportRecord(Message message, String group, int partition, long offset) {
}
