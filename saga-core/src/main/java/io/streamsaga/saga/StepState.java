package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.Strings;

import java.time.Instant;

/**
 * The persisted state of one step of a saga instance. Immutable and thread-safe.
 *
 * @param name                 the step name
 * @param status               where the step is
 * @param attempts             action attempts started so far
 * @param compensationAttempts compensation attempts started so far
 * @param dueAt                when a {@link StepStatus#WAITING} step times out or a scheduled retry runs;
 *                             null otherwise. Persisted so that a new orchestrator re-arms it.
 */
public record StepState(String name, StepStatus status, int attempts, int compensationAttempts, Instant dueAt) {

    public StepState {
        // Plain ifs: ConfigurationException.require's varargs would allocate on every transition.
        if (!Strings.notBlank(name)) {
            throw new ConfigurationException("step name must not be blank, but was " + StreamSagaException.quote(name));
        }
        if (status == null) {
            throw new ConfigurationException("status of step " + StreamSagaException.quote(name) + " must not be null");
        }
        if (attempts < 0 || compensationAttempts < 0) {
            throw new ConfigurationException("attempts must not be negative, but were " + attempts + " and "
                    + compensationAttempts);
        }
    }

    /** A step that has not started. */
    public static StepState pending(String name) {
        return new StepState(name, StepStatus.PENDING, 0, 0, null);
    }

    /** A copy in another status with {@code dueAt} cleared. */
    public StepState with(StepStatus newStatus) {
        return new StepState(name, newStatus, attempts, compensationAttempts, null);
    }

    /** A copy in another status, due at {@code due}. */
    public StepState with(StepStatus newStatus, Instant due) {
        return new StepState(name, newStatus, attempts, compensationAttempts, due);
    }

    /** A copy with one more action attempt started. */
    public StepState nextAttempt(StepStatus newStatus, Instant due) {
        return new StepState(name, newStatus, attempts + 1, compensationAttempts, due);
    }

    /** A copy with one more compensation attempt started. */
    public StepState nextCompensationAttempt() {
        return new StepState(name, StepStatus.COMPENSATING, attempts, compensationAttempts + 1, null);
    }

    /** A copy with the compensation attempts reset (an operator retries the compensation). */
    public StepState resetCompensation(StepStatus newStatus) {
        return new StepState(name, newStatus, attempts, 0, null);
    }
}
