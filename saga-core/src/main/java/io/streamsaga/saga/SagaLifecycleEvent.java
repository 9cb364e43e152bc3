package io.streamsaga.saga;

/**
 * A lifecycle event an orchestrator publishes on the bus when configured to (message type
 * {@value #TYPE}). Immutable and thread-safe.
 *
 * @param sagaId   the saga instance
 * @param sagaName the definition name
 * @param event    {@code started}, {@code step-completed}, {@code compensating}, {@code completed},
 *                 {@code compensated} or {@code failed}
 * @param step     the step concerned, or null
 * @param status   the saga status after the event
 * @param error    the failure description, or null
 */
public record SagaLifecycleEvent(String sagaId, String sagaName, String event, String step, SagaStatus status,
                                 String error) {
    /** The event type id on the wire. */
    public static final String TYPE = "saga-lifecycle";
}
