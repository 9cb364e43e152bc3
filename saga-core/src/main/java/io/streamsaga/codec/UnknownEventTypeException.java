package io.streamsaga.codec;

import io.streamsaga.StreamSagaException;

/** An event class or type id that was never registered in the {@link TypeRegistry}. */
public class UnknownEventTypeException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public UnknownEventTypeException(String message) {
        super(message, false);
    }
}
