package io.streamsaga.idempotency;

import io.streamsaga.StreamSagaException;

/**
 * Another delivery of the same message is being handled right now (a concurrent duplicate). Retriable:
 * the retry finds the key done (and skips) or released after a failure (and runs).
 */
public class ClaimInProgressException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String key;

    public ClaimInProgressException(String key) {
        super("message key '" + key + "' is being processed by another delivery", true);
        this.key = key;
    }

    /** The deduplication key. */
    public String key() {
        return key;
    }
}
