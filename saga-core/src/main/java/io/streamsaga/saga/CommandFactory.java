package io.streamsaga.saga;

/**
 * Builds the command event a remote step sends (its class must be registered in the bus's type registry: declared with
 * {@link SagaDefinition.StepBuilder#command(String, Class, CommandFactory)}, the orchestrator checks it before any saga
 * starts).
 *
 * @param <D> the saga data type
 */
@FunctionalInterface
public interface CommandFactory<D> {
    Object command(D data, StepContext context) throws Exception;
}
