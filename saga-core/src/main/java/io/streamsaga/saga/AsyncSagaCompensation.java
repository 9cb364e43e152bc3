package io.streamsaga.saga;

import java.util.concurrent.CompletionStage;

/**
 * An asynchronous compensation: returns a stage that completes when the step's effect is undone, or
 * exceptionally to fail the attempt (retried per the step's compensation retry policy), as does a stage that
 * overruns the step's {@link SagaStep#compensationTimeout() compensation timeout}. The engine does not
 * block on it: the saga stays {@code COMPENSATING} until the stage completes, and the compensations of the
 * steps before it start only then. The same rules as for {@link SagaCompensation} apply: idempotent by
 * {@link StepContext#idempotencyKey()}, because after a crash it may run again.
 *
 * @param <D> the saga data type
 */
@FunctionalInterface
public interface AsyncSagaCompensation<D> {
    CompletionStage<?> compensate(D data, StepContext context) throws Exception;
}
