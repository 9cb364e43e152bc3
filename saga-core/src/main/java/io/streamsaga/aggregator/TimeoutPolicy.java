package io.streamsaga.aggregator;

/** What happens to a group whose timeout strikes before it completes. */
public enum TimeoutPolicy {
    /** Release the parts received so far to the releaser, marked partial. */
    RELEASE_PARTIAL,
    /** Send every part to its topic's dead-letter topic ({@code <topic>.DLT}) with reason {@code aggregation-timeout}. */
    DEAD_LETTER
}
