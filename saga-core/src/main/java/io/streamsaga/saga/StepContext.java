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

    /** {@code sagaId + "/" + step}: the same for every attempt and for runs after a crash. */
    public String idempotencyKey() {
        return sagaId + "/" + step;
    }
}
