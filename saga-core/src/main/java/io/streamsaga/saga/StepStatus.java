package io.streamsaga.saga;

/** The state of one step of a saga instance, as persisted in the store. */
public enum StepStatus {
    /** Not started yet. */
    PENDING,
    /** The action was started; its outcome is not recorded yet (after a crash: re-run it). */
    RUNNING,
    /** A remote step's command was sent; waiting for the correlated reply or the timeout. */
    WAITING,
    /** A failed attempt will be retried at {@link StepState#dueAt()}. */
    RETRY_SCHEDULED,
    /** The action succeeded. */
    SUCCEEDED,
    /** The action failed for good; it is not compensated (a failed action must leave no effect). */
    FAILED,
    /**
     * The action's effect is unknown: it timed out, or the saga was cancelled while it ran or awaited its
     * reply. It is compensated like a succeeded step (the compensation must tolerate "nothing to undo"). A step
     * one of whose earlier attempts timed out is uncertain too when a later attempt fails for good; after a
     * restart the engine knows of that attempt from the stored history ({@code STEP_TIMED_OUT}), so a store
     * that keeps no history loses it.
     */
    UNCERTAIN,
    /** The compensation was started; its outcome is not recorded yet. */
    COMPENSATING,
    /** A failed compensation attempt will be retried at {@link StepState#dueAt()}. */
    COMPENSATION_RETRY_SCHEDULED,
    /** The compensation succeeded. */
    COMPENSATED,
    /** The compensation kept failing; the saga needs attention. */
    COMPENSATION_FAILED,
    /** An operator skipped the failed compensation. */
    COMPENSATION_SKIPPED;

    /** Whether a saga that compensates must still undo this step (when it has a compensation). */
    public boolean needsCompensation() {
        return this == SUCCEEDED || this == UNCERTAIN || this == COMPENSATING || this == COMPENSATION_RETRY_SCHEDULED
                || this == COMPENSATION_FAILED;
    }
}
