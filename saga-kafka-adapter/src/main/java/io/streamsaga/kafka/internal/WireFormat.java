package io.streamsaga.kafka.internal;

import io.streamsaga.bus.PublishException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

/**
 * The Kafka wire format of a {@link Message}, documented in docs/kafka.md: record key = message key
 * (UTF-8), record value = payload bytes (JSON), record timestamp = message timestamp, and record headers =
 * {@code message-id}, {@code event-type}, {@code event-version} followed by every message header, each
 * value a UTF-8 string. Stateless and thread-safe.
 */
public final class WireFormat {
    private static final Logger log = LoggerFactory.getLogger(WireFormat.class);

    private WireFormat() {
    }

    /** The producer record for {@code message}, whose payload must be encoded bytes or null. */
    public static ProducerRecord<String, byte[]> toRecord(Message message) {
        return toRecord(message, new HeaderValues());
    }

    /**
     * The producer record for {@code message}, whose payload must be encoded bytes or null; the event type
     * and version header values come from {@code shared}, so records of one type carry the same arrays.
     */
    public static ProducerRecord<String, byte[]> toRecord(Message message, HeaderValues shared) {
        Object payload = message.payload();
        if (payload != null && !(payload instanceof byte[])) {
            throw new PublishException(message.topic(), "the Kafka transport sends encoded payloads (byte[]), but got "
                    + payload.getClass().getName() + "; publish through an EventBus, which encodes", null, false);
        }
        RecordHeaders headers = new RecordHeaders();
        headers.add(MessageHeaders.MESSAGE_ID, utf8(message.id()));
        headers.add(MessageHeaders.EVENT_TYPE, shared.type(message.type()));
        headers.add(MessageHeaders.EVENT_VERSION, shared.version(message.version()));
        // A message holds no header named after a field (Message refuses one), so none is written twice.
        for (Map.Entry<String, String> header : message.headers().entrySet()) {
            headers.add(header.getKey(), utf8(header.getValue()));
        }
        return new ProducerRecord<>(message.topic(), null, message.timestamp().toEpochMilli(), message.key(),
                (byte[]) payload, headers);
    }

    /**
     * The message carried by {@code record}. Records written by other producers may lack the standard
     * headers: the id then defaults to a name-based UUID of topic, partition and offset (stable across
     * redeliveries), the type to the topic name and the version to 1.
     */
    public static Message fromRecord(ConsumerRecord<String, byte[]> record) {
        // One pass over the headers, taking the three field headers out as it goes; the rest is kept in a
        // map that Message accepts without another copy when it holds at most one header (the common case).
        String id = null;
        String type = null;
        String versionText = null;
        String firstName = null;
        String firstValue = null;
        Map<String, String> headers = null;
        for (Header header : record.headers()) {
            String name = header.key();
            byte[] raw = header.value();
            switch (name) {
                case MessageHeaders.MESSAGE_ID -> id = utf8(raw);
                case MessageHeaders.EVENT_TYPE -> type = raw == null ? null : utf8(raw);
                case MessageHeaders.EVENT_VERSION -> versionText = versionText(raw);
                default -> {
                    String value = utf8(raw);
                    if (headers != null) {
                        headers.put(name, value); // the last value wins when a name repeats, as in most clients
                    } else if (firstName == null || firstName.equals(name)) {
                        firstName = name;
                        firstValue = value;
                    } else {
                        headers = new LinkedHashMap<>();
                        headers.put(firstName, firstValue);
                        headers.put(name, value);
                    }
                }
            }
        }
        if (headers == null) {
            headers = firstName == null ? Map.of() : Map.of(firstName, firstValue);
        }
        if (id == null || id.isBlank()) {
            id = UUID.nameUUIDFromBytes((record.topic() + '/' + record.partition() + '/' + record.offset())
                    .getBytes(StandardCharsets.UTF_8)).toString();
        }
        if (type == null || type.isBlank()) {
            type = record.topic();
        }
        int version = parseVersion(versionText, record);
        Instant timestamp = record.timestampType() == TimestampType.NO_TIMESTAMP_TYPE || record.timestamp() < 0
                ? Instant.now()
                : Instant.ofEpochMilli(record.timestamp());
        return new Message(id, record.topic(), record.key(), type, version, record.value(), headers, timestamp);
    }

    private static String utf8(byte[] raw) {
        return raw == null ? "" : new String(raw, StandardCharsets.UTF_8);
    }

    /** "1".."9" without building a string, as nearly every record carries a one-digit version. */
    private static String versionText(byte[] raw) {
        if (raw == null) {
            return null;
        }
        if (raw.length == 1 && raw[0] >= '1' && raw[0] <= '9') {
            return DIGITS[raw[0] - '0'];
        }
        return new String(raw, StandardCharsets.UTF_8);
    }

    private static final String[] DIGITS = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

    private static int parseVersion(String text, ConsumerRecord<?, ?> record) {
        if (text == null || text.isBlank()) {
            return 1;
        }
        if (text.length() == 1 && text.charAt(0) >= '1' && text.charAt(0) <= '9') {
            return text.charAt(0) - '0';
        }
        try {
            int version = Integer.parseInt(text.trim());
            if (version >= 1) {
                return version;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        // Keep the record deliverable (the codec decides whether version 1 binds); the raw value stays visible.
        log.warn("record {}-{}@{} has an invalid {} header '{}'; reading it as version 1", record.topic(),
                record.partition(), record.offset(), MessageHeaders.EVENT_VERSION, text);
        return 1;
    }

    private static byte[] utf8(String value) {
        return value == null ? null : value.getBytes(StandardCharsets.UTF_8);
    }
}
