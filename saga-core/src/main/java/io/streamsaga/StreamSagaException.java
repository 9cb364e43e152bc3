package io.streamsaga;

/**
 * Root of every exception StreamSaga throws. Subclasses carry context (topic, offset, saga id, step)
 * and say whether repeating the failed operation can succeed, so callers decide by type, not by message.
 */
public class StreamSagaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final boolean retriable;

    public StreamSagaException(String message, boolean retriable) {
        super(message);
        this.retriable = retriable;
    }

    public StreamSagaException(String message, Throwable cause, boolean retriable) {
        super(message, cause);
        this.retriable = retriable;
    }

    /** Whether trying the same operation again may succeed (a broker outage) or cannot (bad input). */
    public boolean isRetriable() {
        return retriable;
    }
}
