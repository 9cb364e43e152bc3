package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.ConfigurationException;

/**
 * How often an injected failure strikes: once, the first {@code n} times, or always. Immutable; each run
 * of the test kit counts strikes afresh.
 *
 * @param times how many invocations fail, {@link Integer#MAX_VALUE} for always
 */
public record FailureMode(int times) {

    public FailureMode {
        ConfigurationException.require(times >= 1, "a failure mode must fail at least once, but times was %s", times);
    }

    /** Only the first invocation fails. */
    public static FailureMode once() {
        return new FailureMode(1);
    }

    /** The first {@code n} invocations fail. */
    public static FailureMode times(int n) {
        return new FailureMode(n);
    }

    /** Every invocation fails. */
    public static FailureMode always() {
        return new FailureMode(Integer.MAX_VALUE);
    }

    @Override
    public String toString() {
        return times == Integer.MAX_VALUE ? "always" : times == 1 ? "once" : times + " times";
    }
}
