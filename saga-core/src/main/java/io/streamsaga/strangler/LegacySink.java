package io.streamsaga.strangler;

/**
 * Writes one legacy event into the new system (the source's {@code newOrderService.create(data)}).
 * Throwing leaves the event unsynced: the bus retries it and finally dead-letters it. Called on a consumer
 * thread, one event at a time per partition.
 *
 * @param <E> the legacy event type
 */
@FunctionalInterface
public interface LegacySink<E> {
    void accept(E event) throws Exception;
}
