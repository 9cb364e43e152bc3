package io.streamsaga.routing;

/**
 * Handles the events of one route. Throwing behaves as in any bus handler: retried per the subscription's
 * retry policy, then dead-lettered.
 *
 * @param <T> the event type the route decodes to
 */
@FunctionalInterface
public interface RouteHandler<T> {
    void handle(T event, RouteContext context) throws Exception;
}
