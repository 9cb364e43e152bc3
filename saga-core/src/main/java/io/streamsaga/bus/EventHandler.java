package io.streamsaga.bus;

/**
 * Handles one decoded event. Returning normally acknowledges the message, once what the handler published on its
 * thread has completed; throwing, or such a publish failing, makes the bus retry it per the subscription's retry
 * policy and then dead-letter it ({@link EventBus}). Messages published through the bus
 * while the handler runs (on the handler's thread) inherit its correlation and saga ids and take its
 * message id as their causation id.
 *
 * @param <T> the event type
 */
@FunctionalInterface
public interface EventHandler<T> {
    void handle(T event, DeliveryContext context) throws Exception;
}
