package io.streamsaga.routing;

import io.streamsaga.StreamSagaException;

/**
 * No route accepts the message. Never retriable, so the bus dead-letters it at once instead of retrying
 * it in a loop.
 */
public class UnroutableMessageException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String topic;
    private final String eventType;

    public UnroutableMessageException(String router, String topic, String eventType, String messageId) {
        super("router '" + router + "' has no route for message " + messageId + " on topic '" + topic
                + "' of type '" + eventType + "'", false);
        this.topic = topic;
        this.eventType = eventType;
    }

    public String topic() {
        return topic;
    }

    public String eventType() {
        return eventType;
    }
}
