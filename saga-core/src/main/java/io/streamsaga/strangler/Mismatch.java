package io.streamsaga.strangler;

import java.time.Instant;
import java.util.Objects;

/**
 * A shadowed request where the new implementation disagreed with the legacy one (a different answer, or
 * an exception). Immutable.
 *
 * @param route        the request's route
 * @param tenant       its tenant, or null
 * @param request      the request
 * @param legacy       the legacy answer (the one returned to the caller)
 * @param modern       the new implementation's answer, null when it threw
 * @param modernError  what the new implementation threw, or null
 * @param at           when it was recorded
 */
public record Mismatch(String route, String tenant, Object request, Object legacy, Object modern,
                       String modernError, Instant at) {
    public Mismatch {
        Objects.requireNonNull(route, "route");
        Objects.requireNonNull(at, "at");
    }
}
