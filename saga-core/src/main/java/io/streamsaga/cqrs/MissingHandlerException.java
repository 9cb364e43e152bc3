package io.streamsaga.cqrs;

import io.streamsaga.StreamSagaException;

/** A command or query was sent for which no handler is registered; a programming error, not retriable. Immutable. */
public class MissingHandlerException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final Class<?> requestType;

    public MissingHandlerException(Class<?> requestType) {
        super("no handler registered for " + requestType.getName(), false);
        this.requestType = requestType;
    }

    /** The command or query class without a handler. */
    public Class<?> requestType() {
        return requestType;
    }
}
