package io.streamsaga.internal;

import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * The jittered delay before a retry, drawn from the random source an application configured (a bus's or an
 * orchestrator's {@code retryJitter}), else from the calling thread's {@link ThreadLocalRandom} (taken at each retry,
 * as it must be: one thread's is not to be used by another). Called only when a retry is scheduled, never on a saga's
 * or a delivery's common path. Stateless.
 */
public final class RetryJitter {
    private RetryJitter() {
    }

    /**
     * {@code policy.delayBefore(nextAttempt, ...)} with {@code configured}, or this thread's random when it is null. A
     * configured source is drawn from holding its lock: subscriptions and sagas retried on several threads, of one bus
     * or orchestrator or of several sharing it, never draw at once, so a source that is not thread-safe
     * ({@code SplittableRandom}) keeps its state; uncontended but on a retry, which schedules a timer or sleeps anyway.
     */
    public static Duration delayBefore(RetryPolicy policy, int nextAttempt, RandomGenerator configured) {
        if (configured == null) {
            return policy.delayBefore(nextAttempt, ThreadLocalRandom.current());
        }
        synchronized (configured) {
            return policy.delayBefore(nextAttempt, configured);
        }
    }
}
