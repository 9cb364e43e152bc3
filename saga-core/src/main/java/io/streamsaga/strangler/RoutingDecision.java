package io.streamsaga.strangler;

import java.util.Objects;

/**
 * Where one request went and why. Immutable.
 *
 * @param route  the request's route
 * @param tenant the request's tenant, or null
 * @param target the chosen implementation(s)
 * @param reason which rule decided: {@code tenant}, {@code route}, {@code percentage} or {@code default}
 */
public record RoutingDecision(String route, String tenant, Target target, String reason) {
    public RoutingDecision {
        Objects.requireNonNull(route, "route");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(reason, "reason");
    }
}
