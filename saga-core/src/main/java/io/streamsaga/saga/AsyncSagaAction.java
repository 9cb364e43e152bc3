package io.streamsaga.saga;

import java.util.concurrent.CompletionStage;

/**
 * An asynchronous local step action: returns a stage that completes with the (possibly updated) saga
 * data, or exceptionally to fail the attempt. Its step's timeout applies to the stage.
 *
 * @param <D> the saga data type
 */
@FunctionalInterface
public interface AsyncSagaAction<D> {
    CompletionStage<D> execute(D data, StepContext context) throws Exception;
}
