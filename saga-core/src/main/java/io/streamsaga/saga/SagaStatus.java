package io.streamsaga.saga;

/** The state of a saga instance. */
public enum SagaStatus {
    /** Steps are being executed (or awaited: a reply, a retry backoff). */
    RUNNING,
    /** A step failed or the saga was cancelled; completed steps are being compensated in reverse order. */
    COMPENSATING,
    /** Every step succeeded. Terminal. */
    COMPLETED,
    /** A step failed and every completed step was compensated. Terminal. */
    COMPENSATED,
    /**
     * A compensation (or a retriable step) kept failing, or the store refused a write of the running or compensating
     * saga (a step's result, a compensation's failure it cannot keep); an operator must retry, skip or resolve it.
     */
    FAILED_NEEDS_ATTENTION,
    /** An operator marked a saga that needed attention as resolved by hand. Terminal. */
    RESOLVED;

    /** Whether the engine is still driving the saga (running or compensating). */
    public boolean isActive() {
        return this == RUNNING || this == COMPENSATING;
    }

    /** Whether nothing more will happen to the saga (completed, compensated or resolved). */
    public boolean isTerminal() {
        return this == COMPLETED || this == COMPENSATED || this == RESOLVED;
    }
}
