package io.streamsaga.saga;

/**
 * A synchronous local step action: does the work and returns the (possibly updated) saga data. Throwing
 * fails the attempt. Called on the thread that drives the saga.
 *
 * @param <D> the saga data type
 */
@FunctionalInterface
public interface SagaAction<D> {
    D execute(D data, StepContext context) throws Exception;
}
