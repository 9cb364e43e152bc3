package io.streamsaga.routing;

import io.streamsaga.bus.DeliveryContext;

import java.util.Objects;

/**
 * What a routed handler knows: the delivery, and which route matched it. Immutable.
 *
 * @param delivery the bus delivery (message, group, position, attempt)
 * @param kind     whether an exact topic, an event type or a wildcard matched
 * @param matchedBy the route's topic, pattern or event type as declared
 */
public record RouteContext(DeliveryContext delivery, Kind kind, String matchedBy) {
    public RouteContext {
        Objects.requireNonNull(delivery, "delivery");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(matchedBy, "matchedBy");
    }

    /** The concrete topic the message came from. */
    public String topic() {
        return delivery.topic();
    }

    /** How a route matches, in order of precedence. */
    public enum Kind {
        /** The route names the message's topic exactly. */
        TOPIC,
        /** The route names the message's event type. */
        EVENT_TYPE,
        /** The route's wildcard pattern matches the topic. */
        WILDCARD
    }
}
