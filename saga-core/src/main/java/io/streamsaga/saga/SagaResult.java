package io.streamsaga.saga;

import java.util.Objects;
import java.util.Optional;

/**
 * The outcome of a saga run. The original failure is never swallowed: a compensated saga carries it in
 * {@link #failure()} (and, in the process where it was thrown, the exception itself); a saga that needs
 * attention also carries the compensation failure, unless it needs attention because a retriable step
 * exhausted its retries: nothing was compensated, and {@link #failure()} names that step. Immutable and
 * thread-safe.
 *
 * @param sagaId              the saga instance id
 * @param outcome             how it ended
 * @param data                the final saga data (as the application type)
 * @param failure             the failure that made the saga compensate (or that of a retriable step that
 *                            exhausted its retries), or null
 * @param compensationFailure the compensation failure that needs attention, or null (also for a retriable
 *                            step that exhausted its retries)
 * @param exception           the original exception when thrown in this process, or null
 * @param <D>                 the saga data type
 */
public record SagaResult<D>(String sagaId, SagaOutcome outcome, D data, SagaFailure failure,
                            SagaFailure compensationFailure, Throwable exception) {

    public SagaResult {
        Objects.requireNonNull(sagaId, "sagaId");
        Objects.requireNonNull(outcome, "outcome");
    }

    public boolean isCompleted() {
        return outcome == SagaOutcome.COMPLETED;
    }

    public boolean isCompensated() {
        return outcome == SagaOutcome.COMPENSATED;
    }

    public boolean needsAttention() {
        return outcome == SagaOutcome.FAILED_NEEDS_ATTENTION;
    }

    /** The original exception, when it was thrown in this process. */
    public Optional<Throwable> cause() {
        return Optional.ofNullable(exception);
    }
}
