package io.streamsaga.bus;

import io.streamsaga.StreamSagaException;

/**
 * A message could not be published; retriable when the transport may accept it later. The message quotes the topic
 * bounded by {@link StreamSagaException#quote}; {@link #topic()} returns it as it is.
 */
public class PublishException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String topic;

    public PublishException(String topic, String message, Throwable cause, boolean retriable) {
        super("cannot publish to " + quote(topic) + ": " + message, cause, retriable);
        this.topic = topic;
    }

    public String topic() {
        return topic;
    }
}
