package io.streamsaga.saga;

/** How a saga run ended. */
public enum SagaOutcome {
    /** Every step succeeded. */
    COMPLETED,
    /** A step failed (or the saga was cancelled) and every completed step was compensated. */
    COMPENSATED,
    /** A compensation (or a retriable step) kept failing; an operator must act. */
    FAILED_NEEDS_ATTENTION,
    /** An operator resolved a saga that needed attention. */
    RESOLVED
}
