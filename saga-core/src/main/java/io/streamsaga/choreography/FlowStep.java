package io.streamsaga.choreography;

import java.time.Instant;
import java.util.Objects;

/**
 * One event observed in a flow instance. Immutable.
 *
 * @param event       the event (topic) name as declared in the {@link FlowDefinition}
 * @param messageId   the message id (duplicate deliveries of one id are recorded once)
 * @param causationId the id of the message that caused it, when known
 * @param at          the message's timestamp
 */
public record FlowStep(String event, String messageId, String causationId, Instant at) {
    public FlowStep {
        Objects.requireNonNull(event, "event");
        Objects.requireNonNull(messageId, "messageId");
        Objects.requireNonNull(at, "at");
    }
}
