package io.streamsaga.bus;

/**
 * Handles one decoded event. Returning normally acknowledges the message; throwing makes the bus retry
 * it per the subscription's retry policy and then dead-letter it. Messages published through the bus
 * while the handler runs (on the handler's thread) inherit its correlation and saga ids and take its
 * message id as their causation id.
 *
 * @param <T> the event type
 */
@FunctionalInterface
public interface EventHandler<T> {
    void handle(T event, DeliveryContext context) throws Exception;
}
