package io.streamsaga.saga;

/**
 * A lifecycle event an orchestrator publishes on the bus when configured to (message type
 * {@value #TYPE}). Immutable and thread-safe.
 *
 * @param sagaId   the saga instance
 * @param sagaName the definition name
 * @param event    {@code started}, {@code step-completed}, {@code compensating}, {@code completed},
 *                 {@code compensated}, {@code failed} (the saga needs attention), {@code resolved} (an operator's
 *                 {@code markResolved} of such a saga; its error the failure that was resolved) or {@code retried}
 *                 (an operator's {@code retryCompensation} sent such a saga forward again: status {@code RUNNING}, its error
 *                 the failure it retries after, that of the {@code failed} event before it);
 *                 an operator's {@code retryCompensation} or {@code skipCompensation} that sends such a saga back to
 *                 compensating emits {@code compensating} again, a {@code skipCompensation} that leaves another
 *                 compensation failed {@code failed} again (naming that one)
 * @param step     the step concerned, or null
 * @param status   the saga status after the event
 * @param error    the failure description, or null
 */
public record SagaLifecycleEvent(String sagaId, String sagaName, String event, String step, SagaStatus status,
                                 String error) {
    /** The event type id on the wire. */
    public static final String TYPE = "saga-lifecycle";

    /**
     * The message id of the lifecycle event of {@code saga}'s transition to {@code version}, where a store writes it
     * with the transition (an outbox): {@code <saga id>/<created at>/<version>}, the start of the saga as an ISO-8601
     * instant to the microsecond (what a database keeps of it). The same for the same transition, so that a consumer
     * can tell an event sent again from a new one, and another for a saga started later under the same id, once the
     * first one was purged (as long as the clock does not go back).
     */
    public static String messageId(SagaInstance saga, long version) {
        return SagaMessages.idPrefix(saga.sagaId(), saga.createdAt()) + "/" + version;
    }
}
