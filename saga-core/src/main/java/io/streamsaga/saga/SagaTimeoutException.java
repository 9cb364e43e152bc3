package io.streamsaga.saga;

import java.time.Duration;

/**
 * A step's asynchronous action or remote reply did not come within its timeout, or a compensation's outcome
 * within its compensation timeout. Retriable.
 */
public class SagaTimeoutException extends SagaException {
    private static final long serialVersionUID = 1L;

    public SagaTimeoutException(String sagaId, String step, Duration timeout) {
        super(sagaId, step, "step '" + step + "' of saga " + sagaId + " timed out after " + timeout, null, true);
    }
}
