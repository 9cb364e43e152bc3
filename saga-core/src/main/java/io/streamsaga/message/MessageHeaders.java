package io.streamsaga.message;

/**
 * Names of the standard headers. They travel as plain string headers on every transport (Kafka record
 * headers on Kafka), so services written in other languages can read and write them.
 */
public final class MessageHeaders {
    /** The message's unique id; the idempotency key of consumers. */
    public static final String MESSAGE_ID = "message-id";
    /** Id shared by every message of one business flow (an order's life). */
    public static final String CORRELATION_ID = "correlation-id";
    /** Id of the message whose handling produced this one. */
    public static final String CAUSATION_ID = "causation-id";
    /** Id of the saga instance this message belongs to, when there is one. */
    public static final String SAGA_ID = "saga-id";
    /** Stable event type id, such as {@code order-created}; never a Java class name. */
    public static final String EVENT_TYPE = "event-type";
    /** Schema version of the payload, an integer starting at 1. */
    public static final String EVENT_VERSION = "event-version";
    /**
     * The names a transport carries a message's fields under ({@link #MESSAGE_ID}, {@link #EVENT_TYPE},
     * {@link #EVENT_VERSION}), which a {@link Message} refuses as headers: a store reading back what an earlier version
     * wrote drops a header of such a name, as Kafka always did, rather than fail on it.
     */
    public static final java.util.Set<String> FIELDS = java.util.Set.of(MESSAGE_ID, EVENT_TYPE, EVENT_VERSION);
    /** W3C trace context, propagated unchanged when present. */
    public static final String TRACEPARENT = "traceparent";
    /** Media type of the payload; {@code application/json} by default. */
    public static final String CONTENT_TYPE = "content-type";

    /** Dead-letter headers: why a message was dead-lettered and where it came from. */
    public static final String DLT_ERROR_CLASS = "dlt-error-class";
    public static final String DLT_ERROR_MESSAGE = "dlt-error-message";
    /**
     * The most characters of an error message {@link #DLT_ERROR_MESSAGE} carries: a longer one is cut there and
     * followed by {@code ... (N characters)}, its whole length, as a header must fit in a record.
     */
    public static final int DLT_ERROR_MESSAGE_MAX_LENGTH = 4096;
    public static final String DLT_REASON = "dlt-reason";
    public static final String DLT_ORIGINAL_TOPIC = "dlt-original-topic";
    public static final String DLT_ORIGINAL_PARTITION = "dlt-original-partition";
    public static final String DLT_ORIGINAL_OFFSET = "dlt-original-offset";
    public static final String DLT_ORIGINAL_GROUP = "dlt-original-group";
    public static final String DLT_ATTEMPTS = "dlt-attempts";
    /**
     * On every dead letter: the original's message id (a dead letter has an id of its own), by which it is found on
     * {@link #DLT_ORIGINAL_TOPIC} and which {@link io.streamsaga.bus.DeadLetterRedrive} gives the message it sends back.
     * A dead letter an aggregator sends for a part names no partition or offset (the part was handled and kept): this
     * id is how the part is found.
     */
    public static final String DLT_ORIGINAL_MESSAGE_ID = "dlt-original-message-id";
    /**
     * On a dead letter sent without the original's payload, because the transport refused it with the payload as too
     * large: why (the refusal). The original is at {@link #DLT_ORIGINAL_TOPIC}, {@link #DLT_ORIGINAL_PARTITION} and
     * {@link #DLT_ORIGINAL_OFFSET} for as long as its topic keeps it.
     */
    public static final String DLT_PAYLOAD_OMITTED = "dlt-payload-omitted";
    /**
     * On a dead letter sent without the original's headers (and payload), because the transport refused it without
     * the payload as too large: why, and how many headers the original had. It carries the dead-letter headers only.
     */
    public static final String DLT_HEADERS_OMITTED = "dlt-headers-omitted";
    /**
     * On a dead letter sent without the original's key (and headers and payload), because the transport refused it
     * without the headers as too large: why, the key's length and its first characters. The dead letter has no key, so
     * it goes to any partition of the dead-letter topic.
     */
    public static final String DLT_KEY_OMITTED = "dlt-key-omitted";
    /**
     * On a dead letter sent without the original's type (and key, headers and payload), because the transport refused
     * it without the key as too large and the type is long enough to be why: the type's length and its first
     * characters. The dead letter's type is then its topic's name, what a Kafka record without an {@code event-type}
     * header reads as.
     */
    public static final String DLT_TYPE_OMITTED = "dlt-type-omitted";

    /**
     * On a message {@link io.streamsaga.bus.DeadLetterRedrive} sent back from a dead-letter topic to its original
     * topic: how many times it was, 1 at the first redrive. A dead letter keeps its original's headers, so a message
     * that fails again and is redriven again counts up, which shows a message that keeps failing.
     */
    public static final String REDRIVE_COUNT = "redrive-count";

    /** Sequence headers written by the event splitter and read by the aggregator. */
    public static final String SEQUENCE_ID = "sequence-id";
    public static final String SEQUENCE_NUMBER = "sequence-number";
    public static final String SEQUENCE_SIZE = "sequence-size";
    public static final String SEQUENCE_LAST = "sequence-last";

    /** Suffix of dead-letter topics: {@code order-created} dead-letters to {@code order-created.DLT}. */
    public static final String DEAD_LETTER_SUFFIX = ".DLT";

    private MessageHeaders() {
    }
}
