package io.streamsaga.kafka;

import io.streamsaga.StreamSagaException;

/** A Kafka operation of the transport (admin query, client creation) failed; retriable when Kafka says so. */
public class KafkaTransportException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public KafkaTransportException(String message, Throwable cause, boolean retriable) {
        super(message, cause, retriable);
    }
}
