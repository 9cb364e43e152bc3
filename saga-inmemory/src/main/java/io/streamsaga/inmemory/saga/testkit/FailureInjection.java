package io.streamsaga.inmemory.saga.testkit;

import java.util.Objects;

/**
 * A failure to inject into a step or a compensation of the definition a run is upgraded to
 * ({@link SagaRunReport#upgradeTo}), as {@link SagaTestKit#failStep} and {@link SagaTestKit#failCompensation} inject
 * one into the definition a run starts with: a step only the newer version has can be failed so. Immutable.
 *
 * @param step         the step's name
 * @param compensation whether its compensation fails rather than its action (or the handling of its reply)
 * @param mode         how often it fails
 */
public record FailureInjection(String step, boolean compensation, FailureMode mode) {

    public FailureInjection {
        Objects.requireNonNull(step, "step");
        Objects.requireNonNull(mode, "mode");
    }

    /** Fails the step's action (or the handling of its reply) as {@code mode} says, as {@link SagaTestKit#failStep}. */
    public static FailureInjection step(String step, FailureMode mode) {
        return new FailureInjection(step, false, mode);
    }

    /** Fails the step's compensation as {@code mode} says, as {@link SagaTestKit#failCompensation}. */
    public static FailureInjection compensation(String step, FailureMode mode) {
        return new FailureInjection(step, true, mode);
    }
}
