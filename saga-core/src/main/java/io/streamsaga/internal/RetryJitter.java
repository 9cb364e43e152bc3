package io.streamsaga.internal;

import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * The jittered delay before a retry, drawn from the random source an application configured (a bus's or an
 * orchestrator's {@code retryJitter}), else from the calling thread's {@link ThreadLocalRandom} (taken at each retry,
 * as it must be: one thread's is not to be used by another). Called only when a retry is scheduled. Stateless.
 */
public final class RetryJitter {
    private RetryJitter() {
    }

    /** {@code policy.delayBefore(nextAttempt, ...)} with {@code configured}, or this thread's random when it is null. */
    public static Duration delayBefore(RetryPolicy policy, int nextAttempt, RandomGenerator configured) {
        return policy.delayBefore(nextAttempt, configured != null ? configured : ThreadLocalRandom.current());
    }
}
