package io.streamsaga.strangler;

import io.streamsaga.ConfigurationException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Which implementation serves which request, as an immutable value the gateway swaps atomically at run
 * time. Precedence: a tenant rule, then a route rule, then a route's percentage (the share of its requests
 * sent to the new implementation), then the default target. Immutable and thread-safe; the {@code with*}
 * methods return changed copies.
 *
 * @param defaultTarget   where requests matched by no rule go
 * @param routes          explicit target per route
 * @param percentToModern per route, the percentage (0..100) of requests sent to the new implementation
 * @param tenants         explicit target per tenant, overriding everything else
 */
public record RoutingRules(Target defaultTarget, Map<String, Target> routes, Map<String, Integer> percentToModern,
                           Map<String, Target> tenants) {

    public RoutingRules {
        Objects.requireNonNull(defaultTarget, "defaultTarget");
        routes = Map.copyOf(routes);
        tenants = Map.copyOf(tenants);
        percentToModern = Map.copyOf(percentToModern);
        percentToModern.forEach((route, percent) -> ConfigurationException.require(percent >= 0 && percent <= 100,
                "percentage of route '%s' must be between 0 and 100, but was %s", route, percent));
    }

    /** Everything to the legacy implementation: the starting point of a migration. */
    public static RoutingRules allLegacy() {
        return new RoutingRules(Target.LEGACY, Map.of(), Map.of(), Map.of());
    }

    /** A copy that sends {@code route} to {@code target} (removing its percentage). */
    public RoutingRules withRoute(String route, Target target) {
        Map<String, Target> next = new LinkedHashMap<>(routes);
        next.put(requireName("route", route), Objects.requireNonNull(target, "target"));
        Map<String, Integer> percents = new LinkedHashMap<>(percentToModern);
        percents.remove(route);
        return new RoutingRules(defaultTarget, next, percents, tenants);
    }

    /** A copy that sends {@code percent}% of {@code route}'s requests to the new implementation. */
    public RoutingRules withPercentage(String route, int percent) {
        Map<String, Integer> next = new LinkedHashMap<>(percentToModern);
        next.put(requireName("route", route), percent);
        Map<String, Target> explicit = new LinkedHashMap<>(routes);
        explicit.remove(route);
        return new RoutingRules(defaultTarget, explicit, next, tenants);
    }

    /** A copy that sends every request of {@code tenant} to {@code target}. */
    public RoutingRules withTenant(String tenant, Target target) {
        Map<String, Target> next = new LinkedHashMap<>(tenants);
        next.put(requireName("tenant", tenant), Objects.requireNonNull(target, "target"));
        return new RoutingRules(defaultTarget, routes, percentToModern, next);
    }

    /** A copy with another default target. */
    public RoutingRules withDefault(Target target) {
        return new RoutingRules(target, routes, percentToModern, tenants);
    }

    private static String requireName(String what, String name) {
        ConfigurationException.require(name != null && !name.isBlank(), "%s must not be blank, but was '%s'", what, name);
        return name;
    }
}
