package io.streamsaga.choreography;

/** Where a choreographed flow instance stands. Immutable. */
public enum FlowStatus {
    /** Events arrive; no terminal event yet and the deadline has not passed. */
    RUNNING,
    /** A terminal success event was seen. */
    SUCCEEDED,
    /** A terminal failure event was seen. */
    FAILED,
    /** The deadline passed with no terminal event: something in the chain did not react. */
    STALLED;

    /** Whether a terminal event ended the instance. */
    public boolean isTerminal() {
        return this == SUCCEEDED || this == FAILED;
    }
}
