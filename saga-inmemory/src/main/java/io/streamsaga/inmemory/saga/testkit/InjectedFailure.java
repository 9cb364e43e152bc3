package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.StreamSagaException;

/** The exception the test kit throws into a step or compensation it was told to fail. Retriable. */
public final class InjectedFailure extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public InjectedFailure(String message) {
        super(message, true);
    }
}
