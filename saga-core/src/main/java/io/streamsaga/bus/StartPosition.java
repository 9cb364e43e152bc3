package io.streamsaga.bus;

/** Where a consumer group with no committed position starts reading. */
public enum StartPosition {
    /** Only messages published after the subscription. */
    LATEST,
    /** Every message still retained, from the beginning of the log (replay). */
    EARLIEST
}
