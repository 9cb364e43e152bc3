package io.streamsaga.saga;

/**
 * The role of a step in a saga, checked when the definition is built (see Chris Richardson's saga
 * step taxonomy): compensatable steps first, at most one pivot, then retriable steps only.
 */
public enum StepRole {
    /** Can be undone by its compensation when a later step fails. */
    COMPENSATABLE,
    /** The go/no-go step: once it succeeds the saga will complete; it has no compensation. */
    PIVOT,
    /** Follows the pivot; retried forward until it succeeds and never compensated. */
    RETRIABLE
}
