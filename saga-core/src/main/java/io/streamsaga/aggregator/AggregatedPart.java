package io.streamsaga.aggregator;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.splitter.SequenceInfo;

import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One message held in an aggregation group, in the form a store can persist: the encoded payload and the
 * message's identity. Immutable (do not modify the payload array).
 *
 * @param messageId  the message id (a redelivered part is recognised by it and not added twice)
 * @param topic      the topic it came from
 * @param type       its event type id
 * @param version    its event version
 * @param headers    its headers (including sequence headers), without a header named after the id, type or version
 *                   ({@link MessageHeaders#FIELDS}), which an earlier version may have stored with a part
 * @param payload    its encoded payload
 * @param receivedAt when the aggregator took it
 * @param key        its partitioning key, kept for its dead letter; may be null (none, or a part stored before
 *                   parts kept their key)
 */
public record AggregatedPart(String messageId, String topic, String type, int version, Map<String, String> headers,
                             byte[] payload, Instant receivedAt, String key) {
    public AggregatedPart {
        ConfigurationException.require(messageId != null && !messageId.isBlank(), "part message id must not be blank, but was '%s'", messageId);
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(receivedAt, "receivedAt");
        if (!java.util.Collections.disjoint(headers.keySet(), MessageHeaders.FIELDS)) {
            // stored by an earlier version, whose Message took such a header: the part's own id, type and version
            // stand, as on Kafka, which dropped it; kept, it would make the part no message (a Message refuses it)
            headers = new java.util.HashMap<>(headers);
            headers.keySet().removeAll(MessageHeaders.FIELDS);
        }
        headers = Map.copyOf(headers);
        payload = payload == null ? new byte[0] : payload;
    }

    /** A part without a key (the form of parts stored before parts kept their key). */
    public AggregatedPart(String messageId, String topic, String type, int version, Map<String, String> headers,
                          byte[] payload, Instant receivedAt) {
        this(messageId, topic, type, version, headers, payload, receivedAt, null);
    }

    /** The part of {@code message}, its payload encoded with {@code codec}. */
    public static AggregatedPart of(Message message, EventCodec codec, Instant receivedAt) {
        byte[] bytes = message.payload() == null ? new byte[0] : codec.encode(message.payload());
        return new AggregatedPart(message.id(), message.topic(), message.type(), message.version(), message.headers(),
                bytes, receivedAt, message.key());
    }

    /** The part as a message again (encoded payload), for decoding or dead-lettering. */
    public Message toMessage() {
        return Message.builder(topic).id(messageId).key(key).type(type).version(version).headers(headers).payload(payload)
                .timestamp(receivedAt).build();
    }

    /** The sequence headers written by the splitter, if any. */
    public Optional<SequenceInfo> sequence() {
        return SequenceInfo.of(toMessage());
    }
}
