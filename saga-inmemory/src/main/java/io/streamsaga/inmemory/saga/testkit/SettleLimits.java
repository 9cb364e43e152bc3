package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.ConfigurationException;

/**
 * When the kit takes a run for one that never settles (see {@link SagaTestKit#maxRoundsAtOneInstant} and
 * {@link SagaTestKit#maxTimersToSettle}). Immutable.
 *
 * @param roundsAtOneInstant the most settling rounds at one virtual instant (each message delivered and each timer
 *                           run is one), the clock not moving
 * @param timersToSettle     the most timers {@link SagaRunReport#settle()} runs
 */
record SettleLimits(int roundsAtOneInstant, int timersToSettle) {
    static final SettleLimits DEFAULTS = new SettleLimits(100_000, 100_000);

    SettleLimits {
        ConfigurationException.require(roundsAtOneInstant >= 1,
                "maxRoundsAtOneInstant must be at least 1, but was %s", roundsAtOneInstant);
        ConfigurationException.require(timersToSettle >= 1,
                "maxTimersToSettle must be at least 1, but was %s", timersToSettle);
    }
}
