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
     * reply. It is compensated like a succeeded step (the compensation must tolerate "nothing to undo").
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
