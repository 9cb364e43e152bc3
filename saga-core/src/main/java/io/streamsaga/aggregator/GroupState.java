package io.streamsaga.aggregator;

/** Where an aggregation group is in its life. */
public enum GroupState {
    /** Collecting parts. */
    OPEN,
    /** A completion rule held and the group was released. */
    COMPLETED,
    /** The timeout struck and the partial group was released. */
    TIMED_OUT_RELEASED,
    /**
     * The timeout struck and the parts were dead-lettered; or, with a timeout, the group was complete but its
     * release kept failing for {@code keepClosed} and its parts were dead-lettered with the release's error.
     */
    TIMED_OUT_DEAD_LETTERED,
    /**
     * The timeout struck and its outcome (the partial release or the dead letters, as the
     * {@link TimeoutPolicy} says) is under way; closed to new parts. Its deadline is a lease, {@code releaseLease} (as
     * a release's) after the timeout struck: until then the instance that saved it finishes the outcome and the others leave it
     * alone; once it passed, an aggregator re-armed after that instance died takes the outcome over. A part
     * arriving meanwhile is refused with a retriable {@link AggregationException}, as the outcome may fail and
     * reopen the group.
     */
    TIMING_OUT,
    /**
     * A completion rule held and the releaser is running (or the process died before it returned); closed to
     * new parts. It becomes {@link #COMPLETED} once the releaser returned and what it published on its thread went
     * through, and {@link #OPEN} again, with all its parts, when the releaser threw or such a publish failed (the first
     * time or run again). Its deadline is the release's lease
     * ({@code releaseLease} after the release began): until then no other release of the group runs, and the
     * part that completed the group arriving again (not acknowledged until the releaser returned) is taken
     * without a release, the instance taking it checking the group when the lease ends. Once it passed with the group still RELEASING (its releaser
     * died), that part's redelivery or the deadline claims the group by a versioned save and runs the releaser
     * again, rather than leave it or delete it unreleased. A new part arriving meanwhile is refused with a
     * retriable {@link AggregationException}, so that it joins a reopened group.
     */
    RELEASING
}
