package io.streamsaga.bus;

/**
 * The transport refused a message as larger than it carries (on Kafka the producer's {@code max.request.size} or the
 * broker's {@code message.max.bytes}). Not retriable: the same message is refused again. The bus reacts to it when
 * it dead-letters: a dead letter refused so (the original record with the dead-letter headers added, over the limit
 * the original just fitted) is sent again, at the record's redelivery, without its payload, naming where the original
 * is, rather than holding its partition for ever; refused again, without the original's headers too, and then without
 * its key too, each omission marked by a header ({@link io.streamsaga.message.MessageHeaders#DLT_PAYLOAD_OMITTED},
 * {@link io.streamsaga.message.MessageHeaders#DLT_HEADERS_OMITTED}, {@link io.streamsaga.message.MessageHeaders#DLT_KEY_OMITTED}).
 * An aggregator's dead letter of a part goes the same way down, at once.
 */
public class MessageTooLargeException extends PublishException {
    private static final long serialVersionUID = 1L;

    public MessageTooLargeException(String topic, String message, Throwable cause) {
        super(topic, message, cause, false);
    }
}
