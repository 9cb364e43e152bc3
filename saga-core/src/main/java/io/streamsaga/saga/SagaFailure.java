package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

/**
 * A recorded error: what failed, where, and why. Persisted with the saga instance, so it survives a
 * restart (the original {@link Throwable} is available in {@link SagaResult#exception()} only in the
 * process where it was thrown). Immutable and thread-safe.
 *
 * @param step       the step whose action or compensation failed, or null (cancellation)
 * @param errorClass the Java class of the error (diagnostics only; never used to decode anything)
 * @param message    the error message, may be null
 */
public record SagaFailure(String step, String errorClass, String message) {

    public SagaFailure {
        // A plain if: ConfigurationException.require's varargs would allocate on every failed step.
        if (errorClass == null || errorClass.isBlank()) {
            throw new ConfigurationException("errorClass must not be blank, but was " + StreamSagaException.quote(errorClass));
        }
    }

    /** The failure of {@code step} with {@code error}. */
    public static SagaFailure of(String step, Throwable error) {
        return new SagaFailure(step, error.getClass().getName(), error.getMessage());
    }

    @Override
    public String toString() {
        return (step == null ? "" : step + ": ") + errorClass + (message == null ? "" : ": " + message);
    }
}
