package io.streamsaga.message;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.Strings;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.security.SecureRandom;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An immutable message on a topic.
 *
 * <p>The payload is either the application's event object (records are recommended, and must not be
 * mutated after publishing: the in-memory transport hands the same instance to every consumer) or its
 * encoded wire form as {@code byte[]} (JSON by default). The standard header values (message id, type,
 * version) are also reachable as fields; {@link #headers()} holds the rest, including correlation,
 * causation and saga ids. Thread-safe.
 *
 * <p>Headers: one rule across the API, no header name or value is ever null. A message refuses one (this
 * constructor, {@link #withHeader}, {@link #withHeaders}, {@link Builder#header}, {@link Builder#headers}) with a
 * {@link ConfigurationException} naming the header, as a publish with such headers fails its stage; a header is
 * dropped with {@link Builder#removeHeader}. So whatever a consumer receives holds no null header value. A header named
 * after a field ({@link MessageHeaders#MESSAGE_ID}, {@link MessageHeaders#EVENT_TYPE},
 * {@link MessageHeaders#EVENT_VERSION}: the names a transport carries the fields under) is refused alike, naming the
 * builder method that sets the field, so that a message reaches a consumer the same on every transport.
 *
 * @param id        unique message id, also the idempotency key of consumers
 * @param topic     the topic it is published to
 * @param key       partitioning key; order is kept per key within a topic; may be null (round robin)
 * @param type      stable event type id, such as {@code order-created}
 * @param version   event schema version, 1 or more
 * @param payload   the event object or its encoded bytes; may be null for a tombstone
 * @param headers   string headers, see {@link MessageHeaders}; null is none, a null name or value is refused
 * @param timestamp when the message was created
 */
public record Message(String id, String topic, String key, String type, int version, Object payload,
                      Map<String, String> headers, Instant timestamp) {

    public Message {
        // Plain checks with the messages built only on failure: this constructor runs on every publish, and
        // the profile showed the generic require calls (boxing the version) as its most expensive line.
        if (!Strings.notBlank(id)) {
            throw invalid("message id must not be blank, but was %s", id);
        }
        if (!Strings.notBlank(topic)) {
            throw invalid("topic must not be blank, but was %s", topic);
        }
        if (!Strings.notBlank(type)) {
            throw invalid("event type must not be blank, but was %s", type);
        }
        if (version < 1) {
            throw invalid("event version must be 1 or more, but was %s", version);
        }
        Objects.requireNonNull(timestamp, "timestamp");
        headers = frozen(headers);
    }

    private static ConfigurationException invalid(String format, Object value) {
        // A refused id, topic or type may come from a broker record: quoted bounded, not whole into logs.
        return new ConfigurationException(String.format(format,
                value instanceof String text ? StreamSagaException.quote(text) : value));
    }

    /** Classes of the JDK's {@code Map.of} maps: immutable and null-free, so they need no defensive copy. */
    private static final Class<?> MAP_OF_ONE = Map.of("k", "v").getClass();
    private static final Class<?> MAP_OF_MANY = Map.of("k", "v", "k2", "v2").getClass();

    /**
     * An unmodifiable copy keeping insertion order, refusing a null name or value; a {@code Map.of} map (null-free)
     * is kept as it is (publish fast path).
     */
    private static Map<String, String> frozen(Map<String, String> headers) {
        if (headers == null || headers.isEmpty()) {
            return Map.of();
        }
        Class<?> type = headers.getClass();
        if (type == MAP_OF_ONE || type == MAP_OF_MANY) {
            requireNoFieldHeader(headers.containsKey(MessageHeaders.MESSAGE_ID) ? MessageHeaders.MESSAGE_ID
                    : headers.containsKey(MessageHeaders.EVENT_TYPE) ? MessageHeaders.EVENT_TYPE
                    : headers.containsKey(MessageHeaders.EVENT_VERSION) ? MessageHeaders.EVENT_VERSION : null);
            return headers;
        }
        LinkedHashMap<String, String> copy = new LinkedHashMap<>(headers);
        for (Map.Entry<String, String> header : copy.entrySet()) {
            requireHeader(header.getKey(), header.getValue());
        }
        return Collections.unmodifiableMap(copy);
    }

    private static void requireHeader(String name, String value) {
        if (name == null || value == null) {
            throw new ConfigurationException("header names and values must not be null, but header '" + name
                    + "' was '" + value + "' (use Message.Builder.removeHeader to drop a header)");
        }
        requireNoFieldHeader(MessageHeaders.FIELDS.contains(name) ? name : null);
    }

    /**
     * The id, type and version are fields, which a transport carries as headers of these names (Kafka writes them so and
     * drops a header of such a name): as a header one would reach a consumer on one transport and not on another, and a
     * message-id header would leave the message its random id. Refused, naming the builder method that sets the field.
     */
    private static void requireNoFieldHeader(String name) {
        if (name != null) {
            String setter = MessageHeaders.MESSAGE_ID.equals(name) ? "id" : MessageHeaders.EVENT_TYPE.equals(name) ? "type"
                    : "version";
            throw new ConfigurationException("header '" + name + "' is the message's " + setter + ", a field, not a header:"
                    + " set it with Message.Builder." + setter + " (and send the message with EventBus.publish(Message))");
        }
    }

    /** How many headers {@link #toString} shows, as {@link StreamSagaException#quote} bounds each value. */
    private static final int TO_STRING_HEADERS = 32;

    /**
     * High 64 bits of every id this JVM generates, drawn once from a {@link SecureRandom}; the low bits
     * come from {@link ThreadLocalRandom}. {@code UUID.randomUUID()} draws all bits from a SecureRandom on
     * every call, which costs more than the rest of an in-memory publish.
     */
    private static final long ID_PREFIX = (new SecureRandom().nextLong() & ~0xF000L) | 0x4000L;

    /** A fresh random message id, formatted as a version-4 UUID (the builder's default id). */
    public static String newId() {
        long low = (ThreadLocalRandom.current().nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
        return new UUID(ID_PREFIX, low).toString();
    }

    /** Starts a message for {@code topic} with a random id and the current time. */
    public static Builder builder(String topic) {
        return new Builder(topic);
    }

    /** A builder pre-filled with this message's fields, to derive a changed copy. */
    public Builder toBuilder() {
        Builder b = new Builder(topic);
        b.id(id);
        b.key = key;
        b.type = type;
        b.version = version;
        b.payload = payload;
        b.headers(headers);
        b.timestamp = timestamp;
        return b;
    }

    /** The header's value, if present. */
    public Optional<String> header(String name) {
        return Optional.ofNullable(headers.get(name));
    }

    public Optional<String> correlationId() {
        return header(MessageHeaders.CORRELATION_ID);
    }

    public Optional<String> causationId() {
        return header(MessageHeaders.CAUSATION_ID);
    }

    public Optional<String> sagaId() {
        return header(MessageHeaders.SAGA_ID);
    }

    /**
     * The headers a message caused by this one inherits, as a publish from this message's handler adds them:
     * the correlation id (this message's, else its id), this message's id as causation id, and its saga id and
     * traceparent when it has them. Headers the caller sets on the new message win. A new map the caller may change.
     */
    public Map<String, String> inheritedHeaders() {
        Map<String, String> inherited = new LinkedHashMap<>(8);
        String correlation = headers.get(MessageHeaders.CORRELATION_ID);
        inherited.put(MessageHeaders.CORRELATION_ID, correlation != null ? correlation : id);
        inherited.put(MessageHeaders.CAUSATION_ID, id);
        String saga = headers.get(MessageHeaders.SAGA_ID);
        if (saga != null) {
            inherited.put(MessageHeaders.SAGA_ID, saga);
        }
        String traceparent = headers.get(MessageHeaders.TRACEPARENT);
        if (traceparent != null) {
            inherited.put(MessageHeaders.TRACEPARENT, traceparent);
        }
        return inherited;
    }

    /** A copy on another topic (used for dead letters and routing). */
    public Message withTopic(String newTopic) {
        return new Message(id, newTopic, key, type, version, payload, headers, timestamp);
    }

    /** A copy with another payload (encoded or decoded form of the same event). */
    public Message withPayload(Object newPayload) {
        return new Message(id, topic, key, type, version, newPayload, headers, timestamp);
    }

    /** A copy with one header set; a null name or value is refused with a {@link ConfigurationException}. */
    public Message withHeader(String name, String value) {
        Map<String, String> copy = new LinkedHashMap<>(headers);
        copy.put(name, value);
        return new Message(id, topic, key, type, version, payload, copy, timestamp);
    }

    /** A copy with the given headers added or replaced; a null name or value is refused. */
    public Message withHeaders(Map<String, String> extra) {
        if (extra.isEmpty()) {
            return this;
        }
        Map<String, String> copy = new LinkedHashMap<>(headers);
        copy.putAll(extra);
        return new Message(id, topic, key, type, version, payload, copy, timestamp);
    }

    /**
     * The message for a log line, without its payload: each value quoted by {@link StreamSagaException#quote}, as
     * they come from outside (a broker record's headers): bounded to 64 characters and the length, a control
     * character (a NUL, a line break) shown as its escape; and only the first 32 headers, then {@code ...} and the
     * count of all of them ({@code headers={'a'='1', ..., ...} (5000 headers)}), as a record can carry thousands. The
     * accessors return the values as they are.
     */
    @Override
    public String toString() {
        StringBuilder text = new StringBuilder(128).append("Message[id=").append(StreamSagaException.quote(id))
                .append(", topic=").append(StreamSagaException.quote(topic))
                .append(", key=").append(StreamSagaException.quote(key))
                .append(", type=").append(StreamSagaException.quote(type))
                .append(", version=").append(version).append(", headers={");
        String separator = "";
        int shown = 0;
        for (Map.Entry<String, String> header : headers.entrySet()) {
            if (shown == TO_STRING_HEADERS) {
                return text.append(", ...} (").append(headers.size()).append(" headers)]").toString();
            }
            text.append(separator).append(StreamSagaException.quote(header.getKey())).append('=')
                    .append(StreamSagaException.quote(header.getValue()));
            separator = ", ";
            shown++;
        }
        return text.append("}]").toString();
    }

    /** Builds a {@link Message}; not thread-safe. */
    public static final class Builder {
        private String id;
        private boolean idSet;
        private final String topic;
        private String key;
        private String type;
        private int version = 1;
        private Object payload;
        private Map<String, String> headers;
        private Instant timestamp;

        private Builder(String topic) {
            this.topic = topic;
        }

        public Builder id(String id) {
            this.id = id;
            this.idSet = true;
            return this;
        }

        public Builder key(String key) {
            this.key = key;
            return this;
        }

        public Builder type(String type) {
            this.type = type;
            return this;
        }

        public Builder version(int version) {
            this.version = version;
            return this;
        }

        public Builder payload(Object payload) {
            this.payload = payload;
            return this;
        }

        /**
         * Sets one header, replacing a previous value.
         *
         * @throws ConfigurationException when the name or the value is null (see {@link #removeHeader})
         */
        public Builder header(String name, String value) {
            requireHeader(name, value);
            if (headers == null) {
                headers = new LinkedHashMap<>(8);
            }
            headers.put(name, value);
            return this;
        }

        /** Drops a header, if set (for example one copied by {@link Message#toBuilder()}). */
        public Builder removeHeader(String name) {
            if (headers != null) {
                headers.remove(name);
            }
            return this;
        }

        /**
         * Sets each header of {@code values}, as {@link #header} does.
         *
         * @throws ConfigurationException when a name or a value is null
         */
        public Builder headers(Map<String, String> values) {
            for (Map.Entry<String, String> entry : values.entrySet()) {
                header(entry.getKey(), entry.getValue());
            }
            return this;
        }

        public Builder timestamp(Instant timestamp) {
            this.timestamp = timestamp;
            return this;
        }

        public Message build() {
            return new Message(idSet ? id : newId(), topic, key, type, version, payload, headers,
                    timestamp == null ? Instant.now() : timestamp);
        }
    }
}
