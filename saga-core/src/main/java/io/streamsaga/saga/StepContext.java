package io.streamsaga.saga;

/**
 * What an action or compensation knows about its invocation. Immutable and thread-safe.
 *
 * <p>After a crash the engine may run an action or a compensation a second time (its outcome was not
 * recorded). Use {@link #idempotencyKey()} to make the second run harmless: store it with the effect
 * and skip the work when it is already there.
 *
 * @param sagaId      the saga instance id
 * @param sagaName    the definition's name
 * @param step        the step name
 * @param attempt     the attempt number, 1 for the first try (counted separately for compensations)
 * @param businessKey the saga's business key, may be null
 */
public record StepContext(String sagaId, String sagaName, String step, int attempt, String businessKey) {

    /**
     * {@code sagaId + "/" + step}: the same for every attempt and for runs after a crash. A compensation gets its
     * step's key, the action's, to find the effect it undoes; to record its own run, or for a service that dedupes
     * requests by key across operations (a payment provider's idempotency header), it derives its own, such as
     * {@code idempotencyKey() + "/compensation"} (the key a remote compensation's command carries), or the undo
     * would be taken for a repeat of the action.
     */
    public String idempotencyKey() {
        return sagaId + "/" + step;
    }
}
