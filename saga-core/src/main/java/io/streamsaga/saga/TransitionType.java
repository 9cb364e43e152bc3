package io.streamsaga.saga;

/** What a {@link SagaTransition} records. */
public enum TransitionType {
    SAGA_STARTED,
    STEP_STARTED,
    /** A remote step's command is about to be sent; the step waits for its reply. */
    STEP_WAITING,
    STEP_SUCCEEDED,
    STEP_FAILED,
    STEP_RETRY_SCHEDULED,
    STEP_TIMED_OUT,
    SAGA_COMPENSATING,
    COMPENSATION_STARTED,
    COMPENSATION_SUCCEEDED,
    COMPENSATION_RETRY_SCHEDULED,
    COMPENSATION_FAILED,
    COMPENSATION_SKIPPED,
    SAGA_COMPLETED,
    SAGA_COMPENSATED,
    SAGA_NEEDS_ATTENTION,
    /**
     * An operator asked to retry what failed (compensations or a retriable step); when it sends the saga forward again,
     * its detail is the failure it retries after (the saga, running, no longer holds it).
     */
    SAGA_RETRIED,
    SAGA_RESOLVED,
    /** The saga's data was upcast to a newer definition version. */
    SAGA_MIGRATED,
    /**
     * With saga ownership: a recovery on another node took the saga over (its owner closed or its lease ran out);
     * the detail names the previous owner.
     */
    SAGA_ADOPTED
}
