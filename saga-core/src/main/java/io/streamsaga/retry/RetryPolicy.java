package io.streamsaga.retry;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.random.RandomGenerator;

/**
 * How often and how patiently a failed operation (a handler, a saga step, a compensation) is tried again.
 * Immutable and thread-safe; build with {@link #builder()}.
 *
 * <p>Delays grow exponentially from {@code initialBackoff} by {@code multiplier}, capped at
 * {@code maxBackoff}, each spread by up to {@code jitter} (a fraction, 0 to 1) either way. A
 * {@link StreamSagaException} that is not {@linkplain StreamSagaException#isRetriable() retriable}, or an
 * exception of one of the {@code nonRetryable} classes, is never retried.
 *
 * @param maxAttempts    total attempts including the first; 1 means no retry
 * @param initialBackoff delay before the second attempt
 * @param multiplier     growth factor of the delay, 1 or more
 * @param maxBackoff     upper bound of any delay
 * @param jitter         random spread as a fraction of the delay, from 0 to 1
 * @param nonRetryable   exception classes (and their subclasses) that fail at once
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, double multiplier, Duration maxBackoff,
                          double jitter, Set<Class<? extends Throwable>> nonRetryable) {

    /** Three attempts, 100 ms then 200 ms apart, 20 % jitter. */
    public static final RetryPolicy DEFAULT = builder().build();

    /** A single attempt. */
    public static final RetryPolicy NONE = builder().maxAttempts(1).build();

    public RetryPolicy {
        ConfigurationException.require(maxAttempts >= 1, "maxAttempts must be 1 or more, but was %s", maxAttempts);
        ConfigurationException.requireNonNegative(initialBackoff, "initialBackoff");
        ConfigurationException.require(multiplier >= 1.0, "multiplier must be 1 or more, but was %s", multiplier);
        ConfigurationException.requireNonNegative(maxBackoff, "maxBackoff");
        ConfigurationException.require(maxBackoff.compareTo(initialBackoff) >= 0,
                "maxBackoff must be at least initialBackoff (%s), but was %s", initialBackoff, maxBackoff);
        ConfigurationException.require(jitter >= 0.0 && jitter <= 1.0, "jitter must be between 0 and 1, but was %s", jitter);
        nonRetryable = Set.copyOf(nonRetryable);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether another attempt may follow a failure with {@code error} after {@code attemptsSoFar} attempts. */
    public boolean shouldRetry(Throwable error, int attemptsSoFar) {
        return attemptsSoFar < maxAttempts && isRetryable(error);
    }

    /** Whether the error's type allows a retry at all. */
    public boolean isRetryable(Throwable error) {
        if (error instanceof StreamSagaException sse && !sse.isRetriable()) {
            return false;
        }
        for (Class<? extends Throwable> type : nonRetryable) {
            if (type.isInstance(error)) {
                return false;
            }
        }
        return true;
    }

    /** The delay before attempt {@code nextAttempt} (2 for the first retry), jittered with {@code random}. */
    public Duration delayBefore(int nextAttempt, RandomGenerator random) {
        if (nextAttempt <= 1 || initialBackoff.isZero()) {
            return Duration.ZERO;
        }
        double base = initialBackoff.toNanos() * Math.pow(multiplier, nextAttempt - 2);
        double capped = Math.min(base, maxBackoff.toNanos());
        double spread = jitter == 0 ? 0 : capped * jitter * (random.nextDouble() * 2 - 1);
        return Duration.ofNanos((long) Math.max(0, Math.min(capped + spread, maxBackoff.toNanos())));
    }

    /**
     * Builds a {@link RetryPolicy}; not thread-safe. Defaults: 3 attempts, 100 ms initial backoff, multiplier 2,
     * 20 % jitter, and a maxBackoff of 30 s, or the initial backoff when that is longer (an initial backoff of an
     * hour alone is taken, not refused for a cap it was never given).
     */
    public static final class Builder {
        private static final Duration DEFAULT_MAX_BACKOFF = Duration.ofSeconds(30);
        private int maxAttempts = 3;
        private Duration initialBackoff = Duration.ofMillis(100);
        private double multiplier = 2.0;
        private Duration maxBackoff;
        private boolean maxBackoffGiven; // else the default: DEFAULT_MAX_BACKOFF, or initialBackoff if longer
        private double jitter = 0.2;
        private final Set<Class<? extends Throwable>> nonRetryable = new LinkedHashSet<>();

        private Builder() {
        }

        public Builder maxAttempts(int maxAttempts) {
            this.maxAttempts = maxAttempts;
            return this;
        }

        public Builder initialBackoff(Duration initialBackoff) {
            this.initialBackoff = initialBackoff;
            return this;
        }

        public Builder multiplier(double multiplier) {
            this.multiplier = multiplier;
            return this;
        }

        public Builder maxBackoff(Duration maxBackoff) {
            this.maxBackoff = maxBackoff;
            this.maxBackoffGiven = true;
            return this;
        }

        public Builder jitter(double jitter) {
            this.jitter = jitter;
            return this;
        }

        /** No backoff at all between attempts. */
        public Builder noBackoff() {
            this.initialBackoff = Duration.ZERO;
            this.maxBackoff = Duration.ZERO;
            this.maxBackoffGiven = true;
            this.jitter = 0;
            return this;
        }

        @SafeVarargs
        public final Builder nonRetryable(Class<? extends Throwable>... types) {
            nonRetryable.addAll(List.of(types));
            return this;
        }

        public RetryPolicy build() {
            Duration cap = maxBackoffGiven ? maxBackoff
                    : initialBackoff != null && initialBackoff.compareTo(DEFAULT_MAX_BACKOFF) > 0 ? initialBackoff
                    : DEFAULT_MAX_BACKOFF;
            return new RetryPolicy(maxAttempts, initialBackoff, multiplier, cap, jitter, nonRetryable);
        }
    }
}
