package io.streamsaga.saga;

/**
 * Undoes a step's effect. Must be idempotent by {@link StepContext#idempotencyKey()}: after a crash it
 * may run twice, and it may run for a step whose effect is uncertain (timed out), where there may be
 * nothing to undo. Throwing fails the attempt (retried per the step's compensation retry policy).
 *
 * @param <D> the saga data type
 */
@FunctionalInterface
public interface SagaCompensation<D> {
    void compensate(D data, StepContext context) throws Exception;
}
