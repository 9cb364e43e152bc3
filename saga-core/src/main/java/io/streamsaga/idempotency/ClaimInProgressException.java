package io.streamsaga.idempotency;

import io.streamsaga.StreamSagaException;

/**
 * Another delivery of the same message is being handled right now (a concurrent duplicate, for
 * {@link IdempotentConsumer}), or another send of it is in progress (for {@link IdempotentProducer}).
 * Retriable: the retry finds the key done (and skips) or released after a failure (and runs, or sends).
 */
public class ClaimInProgressException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String key;

    public ClaimInProgressException(String key) {
        super("message key '" + key + "' is claimed by another delivery or send that is still in progress", true);
        this.key = key;
    }

    /** The deduplication key. */
    public String key() {
        return key;
    }
}
