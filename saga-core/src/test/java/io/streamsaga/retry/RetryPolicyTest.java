package io.streamsaga.retry;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.DecodingException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RetryPolicyTest {

    private static String rejection(RetryPolicy.Builder builder) {
        return assertThrows(ConfigurationException.class, builder::build).getMessage();
    }

    @Test
    void invalidSettingsAreRejectedQuotingTheBadValue() {
        assertEquals("maxAttempts must be 1 or more, but was 0", rejection(RetryPolicy.builder().maxAttempts(0)));
        assertEquals("initialBackoff must be zero or positive, but was PT-1S",
                rejection(RetryPolicy.builder().initialBackoff(Duration.ofSeconds(-1))));
        assertEquals("multiplier must be 1 or more, but was 0.5", rejection(RetryPolicy.builder().multiplier(0.5)));
        assertEquals("maxBackoff must be at least initialBackoff (PT1S), but was PT0.5S",
                rejection(RetryPolicy.builder().initialBackoff(Duration.ofSeconds(1)).maxBackoff(Duration.ofMillis(500))));
        assertEquals("jitter must be between 0 and 1, but was 1.5", rejection(RetryPolicy.builder().jitter(1.5)));
    }

    @Test
    void backoffGrowsByTheMultiplierWithoutJitter() {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(6).initialBackoff(Duration.ofMillis(100))
                .multiplier(2).jitter(0).build();
        SplittableRandom random = new SplittableRandom(1);
        assertEquals(Duration.ZERO, policy.delayBefore(1, random));
        assertEquals(Duration.ofMillis(100), policy.delayBefore(2, random));
        assertEquals(Duration.ofMillis(200), policy.delayBefore(3, random));
        assertEquals(Duration.ofMillis(400), policy.delayBefore(4, random));
        assertEquals(Duration.ofMillis(800), policy.delayBefore(5, random));
    }

    @Test
    void backoffIsCappedAtMaxBackoff() {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(20).initialBackoff(Duration.ofMillis(100))
                .multiplier(3).maxBackoff(Duration.ofSeconds(1)).jitter(0).build();
        SplittableRandom random = new SplittableRandom(1);
        assertEquals(Duration.ofMillis(900), policy.delayBefore(4, random));
        assertEquals(Duration.ofSeconds(1), policy.delayBefore(5, random));
        assertEquals(Duration.ofSeconds(1), policy.delayBefore(19, random));
    }

    @Test
    void jitterStaysWithinItsFractionAndUnderTheCap() {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(10).initialBackoff(Duration.ofMillis(100))
                .multiplier(2).maxBackoff(Duration.ofMillis(300)).jitter(0.25).build();
        SplittableRandom random = new SplittableRandom(42);
        long lowest = Long.MAX_VALUE;
        long highest = 0;
        for (int i = 0; i < 10_000; i++) {
            long second = policy.delayBefore(2, random).toMillis();
            assertTrue(second >= 75 && second <= 125, "delay before attempt 2: " + second);
            long capped = policy.delayBefore(5, random).toMillis();
            assertTrue(capped >= 225 && capped <= 300, "capped delay: " + capped);
            lowest = Math.min(lowest, second);
            highest = Math.max(highest, second);
        }
        // The spread is really used, in both directions.
        assertTrue(lowest < 85 && highest > 115, "spread " + lowest + ".." + highest);
    }

    @Test
    void noBackoffMeansNoDelay() {
        RetryPolicy policy = RetryPolicy.builder().noBackoff().build();
        assertEquals(Duration.ZERO, policy.delayBefore(3, new SplittableRandom(1)));
    }

    @Test
    void retriesStopAfterMaxAttempts() {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(3).build();
        IllegalStateException error = new IllegalStateException("boom");
        assertTrue(policy.shouldRetry(error, 1));
        assertTrue(policy.shouldRetry(error, 2));
        assertFalse(policy.shouldRetry(error, 3));
        assertFalse(RetryPolicy.NONE.shouldRetry(error, 1));
    }

    @Test
    void nonRetryableErrorsFailAtOnce() {
        RetryPolicy policy = RetryPolicy.builder().maxAttempts(5).nonRetryable(IllegalArgumentException.class).build();
        assertFalse(policy.shouldRetry(new NumberFormatException("subclass too"), 1));
        assertFalse(policy.shouldRetry(new DecodingException("never retriable"), 1));
        assertTrue(policy.shouldRetry(new IllegalStateException("retriable"), 1));
    }

    @Test
    void anInitialBackoffLongerThanTheDefaultMaxBackoffIsTakenWithoutAMaxBackoffOfItsOwn() {
        RetryPolicy hourly = RetryPolicy.builder().initialBackoff(Duration.ofHours(1)).jitter(0).build();

        assertEquals(Duration.ofHours(1), hourly.maxBackoff());
        assertEquals(Duration.ofHours(1), hourly.delayBefore(3, new SplittableRandom(1)));
        assertEquals(Duration.ofSeconds(30), RetryPolicy.builder().initialBackoff(Duration.ofSeconds(1)).build().maxBackoff());
        assertEquals(Duration.ofMinutes(10), RetryPolicy.builder().maxBackoff(Duration.ofMinutes(10))
                .initialBackoff(Duration.ofMinutes(2)).build().maxBackoff());
    }

    @Test
    void defaultsAreThreeAttemptsFromOneHundredMillis() {
        assertEquals(3, RetryPolicy.DEFAULT.maxAttempts());
        assertEquals(Duration.ofMillis(100), RetryPolicy.DEFAULT.initialBackoff());
        assertEquals(1, RetryPolicy.NONE.maxAttempts());
    }
}
