package io.streamsaga.internal;

import org.slf4j.MDC;

/**
 * The keys the engine and the bus put in slf4j's {@link MDC} while they call the application, when the orchestrator's
 * or the bus's {@code logContext(true)} asks for it (docs/sagas.md, "Log correlation"), and the put and put back that
 * restore what the calling thread had: the engine may run on the application's thread ({@code start()}) and a
 * pooled thread must not keep a saga's keys. Each method works on the calling thread's MDC only.
 */
public final class LogContext {
    /** The saga instance's id. */
    public static final String SAGA_ID = "streamsaga.sagaId";
    /** The saga definition's name. */
    public static final String SAGA = "streamsaga.saga";
    /**
     * The step whose action, compensation, command factory or reply handler runs, or whose outcome a listener's per-step
     * callback hears of.
     */
    public static final String STEP = "streamsaga.step";
    /** The id of the message a bus handler handles. */
    public static final String MESSAGE_ID = "streamsaga.messageId";
    /** Its topic. */
    public static final String TOPIC = "streamsaga.topic";
    /** The consumer group whose handler handles it. */
    public static final String GROUP = "streamsaga.group";
    /** Its correlation id (the first message's id of the conversation); a message without one removes the key. */
    public static final String CORRELATION_ID = "streamsaga.correlationId";
    /** The partition the transport delivered it from (TransportRecord's). */
    public static final String PARTITION = "streamsaga.partition";
    /** Its offset within that partition (TransportRecord's). */
    public static final String OFFSET = "streamsaga.offset";

    /** Never changed nor handed out. */
    private static final String[] SAGA_KEYS = {SAGA_ID, SAGA, STEP};
    private static final String[] MESSAGE_KEYS = {MESSAGE_ID, TOPIC, GROUP, CORRELATION_ID, PARTITION, OFFSET};

    private LogContext() {
    }

    /**
     * Puts a saga's keys ({@code step} null outside a step: the key is removed meanwhile, a step of another saga
     * driving this one not to show) and returns what the thread had, for {@link #restoreSaga}.
     */
    public static String[] putSaga(String sagaId, String saga, String step) {
        return putAll(SAGA_KEYS, sagaId, saga, step);
    }

    /** Puts back what {@link #putSaga} returned. */
    public static void restoreSaga(String[] previous) {
        restoreAll(SAGA_KEYS, previous);
    }

    /**
     * Puts a delivered message's keys, its log position among them, and returns what the thread had, for
     * {@link #restoreMessage}.
     */
    public static String[] putMessage(String messageId, String topic, String group, String correlationId, int partition,
                                      long offset) {
        return putAll(MESSAGE_KEYS, messageId, topic, group, correlationId, Integer.toString(partition),
                Long.toString(offset));
    }

    /** Puts back what {@link #putMessage} returned. */
    public static void restoreMessage(String[] previous) {
        restoreAll(MESSAGE_KEYS, previous);
    }

    /**
     * Puts {@code value} under {@code key} ({@code null}: removes it) and returns what the thread had there, for
     * {@link #restore}.
     */
    private static String put(String key, String value) {
        String previous = MDC.get(key);
        if (value == null) {
            MDC.remove(key);
        } else {
            MDC.put(key, value);
        }
        return previous;
    }

    /** Puts back what {@link #put} returned: the thread's own value, or no key when it had none. */
    private static void restore(String key, String previous) {
        if (previous == null) {
            MDC.remove(key);
        } else {
            MDC.put(key, previous);
        }
    }

    private static String[] putAll(String[] keys, String... values) {
        String[] previous = new String[keys.length];
        for (int k = 0; k < keys.length; k++) {
            previous[k] = put(keys[k], values[k]);
        }
        return previous;
    }

    private static void restoreAll(String[] keys, String[] previous) {
        for (int k = keys.length - 1; k >= 0; k--) {
            restore(keys[k], previous[k]);
        }
    }
}
