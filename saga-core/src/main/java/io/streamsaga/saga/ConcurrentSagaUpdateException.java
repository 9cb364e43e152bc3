package io.streamsaga.saga;

/**
 * Another orchestrator updated the saga instance first (optimistic concurrency): the caller's view is
 * stale and it must stop driving the saga. Not retriable as such: reload the instance instead. An expected
 * version of 0 is a start whose insert lost: the saga id is taken (a saga stored under it, finished or not, or one
 * a run drives), and the message says so.
 */
public class ConcurrentSagaUpdateException extends SagaException {
    private static final long serialVersionUID = 1L;

    public ConcurrentSagaUpdateException(String sagaId, long expectedVersion, long actualVersion) {
        super(sagaId, null, message(sagaId, expectedVersion, actualVersion), null, false);
    }

    private static String message(String sagaId, long expectedVersion, long actualVersion) {
        if (expectedVersion == 0) {
            // A caller that starts a saga once cannot act on "updated concurrently": tell it the id is taken.
            return "saga " + quote(sagaId) + " exists already: a saga id names one saga, so start the new one under an"
                    + " id of its own (or let start(definition, businessKey, data) generate one)";
        }
        return "saga " + sagaId + " was updated concurrently: expected version " + expectedVersion
                + " but the store has " + actualVersion;
    }
}
