package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;

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
 * @param definitionVersion   the version of the definition the saga ended under, whose data class {@code data} is
 *                            of: the version it started under, or the one a recovery or an operator call migrated it
 *                            to; 0 when not known (a result built with the six-argument constructor)
 * @param <D>                 the saga data type
 */
public record SagaResult<D>(String sagaId, SagaOutcome outcome, D data, SagaFailure failure,
                            SagaFailure compensationFailure, Throwable exception, int definitionVersion) {

    public SagaResult {
        Objects.requireNonNull(sagaId, "sagaId");
        Objects.requireNonNull(outcome, "outcome");
        if (definitionVersion < 0) { // a plain if: built at every saga's end
            throw new ConfigurationException("definitionVersion must be 1 or more (0: not known), but was "
                    + definitionVersion);
        }
    }

    /**
     * A result that names no definition version ({@link #definitionVersion()} 0), for one built outside an
     * orchestrator (a test double's); every result an orchestrator gives names its version.
     */
    public SagaResult(String sagaId, SagaOutcome outcome, D data, SagaFailure failure, SagaFailure compensationFailure,
                      Throwable exception) {
        this(sagaId, outcome, data, failure, compensationFailure, exception, 0);
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
