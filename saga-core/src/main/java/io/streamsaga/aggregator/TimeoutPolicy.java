package io.streamsaga.aggregator;

/**
 * What happens to a group whose timeout strikes before it completes. A group whose completion rule holds at its
 * deadline (a failed release reopened it) is not timed out: its release is retried, whole (its parts dead-lettered
 * with the release's error, whatever the policy, should it still fail {@code keepClosed} after the group completed).
 */
public enum TimeoutPolicy {
    /** Release the parts received so far to the releaser, marked partial. */
    RELEASE_PARTIAL,
    /** Send every part to its topic's dead-letter topic ({@code <topic>.DLT}) with reason {@code aggregation-timeout}. */
    DEAD_LETTER
}
