package io.streamsaga.bus;

import io.streamsaga.retry.RetryPolicy;

import java.util.Objects;

/**
 * Per-subscription options. Immutable; {@link #defaults()} starts at the latest position with the bus's
 * default retry policy and no dead-letter listener.
 *
 * @param start              where a group with no committed position starts
 * @param retryPolicy        retries before dead-lettering; null means the bus's default
 * @param deadLetterListener told of each record of this subscription that was dead-lettered; may be null
 */
public record SubscriptionOptions(StartPosition start, RetryPolicy retryPolicy, DeadLetterListener deadLetterListener) {

    public SubscriptionOptions {
        Objects.requireNonNull(start, "start");
    }

    public static SubscriptionOptions defaults() {
        return new SubscriptionOptions(StartPosition.LATEST, null, null);
    }

    /** Defaults but reading from the beginning of the log. */
    public static SubscriptionOptions fromEarliest() {
        return new SubscriptionOptions(StartPosition.EARLIEST, null, null);
    }

    public SubscriptionOptions withStart(StartPosition newStart) {
        return new SubscriptionOptions(newStart, retryPolicy, deadLetterListener);
    }

    public SubscriptionOptions withRetryPolicy(RetryPolicy policy) {
        return new SubscriptionOptions(start, policy, deadLetterListener);
    }

    public SubscriptionOptions withDeadLetterListener(DeadLetterListener listener) {
        return new SubscriptionOptions(start, retryPolicy, listener);
    }
}
