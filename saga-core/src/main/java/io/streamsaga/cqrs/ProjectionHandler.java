package io.streamsaga.cqrs;

import io.streamsaga.bus.DeliveryContext;

/**
 * Applies one event to a read model, as the source's {@code OrderProjection.handle}. Called once per
 * delivery (at least once per event: make it idempotent, e.g. an upsert keyed by the event's id). Called
 * on a consumer thread, concurrently with queries reading the same model.
 *
 * @param <M> the read model
 * @param <E> the event type
 */
@FunctionalInterface
public interface ProjectionHandler<M, E> {
    void apply(M model, E event, DeliveryContext context) throws Exception;
}
