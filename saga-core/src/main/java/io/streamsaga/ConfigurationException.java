package io.streamsaga;

import java.time.Duration;

/** A builder or definition was given an invalid or conflicting value; the message quotes the value. */
public class ConfigurationException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public ConfigurationException(String message) {
        super(message, false);
    }

    /** Throws when {@code condition} is false, with a message built from the format and arguments. */
    public static void require(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new ConfigurationException(String.format(format, args));
        }
    }

    /**
     * As {@link #require(boolean, String, Object...)} with one argument, without the varargs array: checks
     * on hot paths (every message's constructor) would otherwise allocate one per call wherever the JIT
     * does not inline them far enough to remove it.
     */
    public static void require(boolean condition, String format, Object arg) {
        if (!condition) {
            throw new ConfigurationException(String.format(format, arg));
        }
    }

    /**
     * The longest duration the library accepts wherever it schedules, waits or adds a duration to the current time:
     * {@code Long.MAX_VALUE} nanoseconds, about 292 years, what a scheduler's nanosecond delay can hold. A longer one
     * ({@code ChronoUnit.FOREVER.getDuration()}) would be accepted and then fail where it is first used. An age
     * threshold (see {@link #requireAge}) longer than this is taken as this.
     */
    public static final Duration MAX_DURATION = Duration.ofNanos(Long.MAX_VALUE);

    /**
     * Returns {@code value} when it is positive and at most {@link #MAX_DURATION}; throws otherwise, naming it as
     * {@code what} ("step 'charge': timeout", "lease").
     */
    public static Duration requirePositive(Duration value, String what) {
        require(value != null && !value.isNegative() && !value.isZero(), "%s must be positive, but was %s", what, value);
        return requireAtMostMax(value, what);
    }

    /** As {@link #requirePositive} but zero is accepted. */
    public static Duration requireNonNegative(Duration value, String what) {
        require(value != null && !value.isNegative(), "%s must be zero or positive, but was %s", what, value);
        return requireAtMostMax(value, what);
    }

    /**
     * Returns the age threshold {@code value} (an age compared with the clock: a recovery's {@code idleFor}, a query's
     * {@code age}, a saga retention) when it is zero or positive, one longer than {@link #MAX_DURATION} as that (nothing is that old, as
     * nothing is older than {@code ChronoUnit.FOREVER.getDuration()}); throws when it is null or negative, naming it
     * as {@code what}. Unlike a delay, which the library schedules or adds to the time, a threshold has no limit.
     */
    public static Duration requireAge(Duration value, String what) {
        require(value != null && !value.isNegative(), "%s must be zero or positive, but was %s", what, value);
        return value.compareTo(MAX_DURATION) > 0 ? MAX_DURATION : value;
    }

    /**
     * As {@link #requireAge} but zero is refused too: for an age beyond which something is dropped (a transport's
     * retention, whose zero would drop each record as it came). One longer than {@link #MAX_DURATION}
     * ({@code ChronoUnit.FOREVER.getDuration()}, keeping everything) is taken as that.
     */
    public static Duration requirePositiveAge(Duration value, String what) {
        require(value != null && !value.isNegative() && !value.isZero(), "%s must be positive, but was %s", what, value);
        return requireAge(value, what);
    }

    private static Duration requireAtMostMax(Duration value, String what) {
        require(value.compareTo(MAX_DURATION) <= 0, "%s must be at most %s (Long.MAX_VALUE nanoseconds, about 292 years),"
                + " but was %s", what, MAX_DURATION, value);
        return value;
    }
}
