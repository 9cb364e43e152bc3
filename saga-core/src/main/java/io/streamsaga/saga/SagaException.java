package io.streamsaga.saga;

import io.streamsaga.StreamSagaException;

/**
 * A saga-related failure, carrying the saga id and the step when known. The factories quote the saga id in the
 * message bounded by {@link StreamSagaException#quote} (it comes from a caller or a message); {@link #sagaId()}
 * returns it as it is.
 */
public class SagaException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String sagaId;
    private final String step;

    public SagaException(String sagaId, String step, String message, Throwable cause, boolean retriable) {
        super(message, cause, retriable);
        this.sagaId = sagaId;
        this.step = step;
    }

    /** The saga instance concerned, or null. */
    public String sagaId() {
        return sagaId;
    }

    /** The step concerned, or null. */
    public String step() {
        return step;
    }

    /** The saga does not exist (in the store or among the registered definitions). */
    public static SagaException notFound(String sagaId) {
        return new SagaException(sagaId, null, "saga " + quote(sagaId) + " not found", null, false);
    }

    /** An operator call that the saga's current state does not allow. */
    public static SagaException illegalState(String sagaId, String step, String message) {
        return new SagaException(sagaId, step,
                "saga " + quote(sagaId) + (step == null ? "" : " step " + step) + ": " + message, null, false);
    }

    /** A step or compensation did not finish within its timeout. Retriable. */
    public static SagaTimeoutException timeout(String sagaId, String step, java.time.Duration timeout) {
        return new SagaTimeoutException(sagaId, step, timeout);
    }

    /** The saga was cancelled by a caller. */
    public static SagaException cancelled(String sagaId) {
        return new SagaException(sagaId, null, "saga " + quote(sagaId) + " was cancelled", null, false);
    }
}
