package io.streamsaga.saga;

/**
 * Another orchestrator updated the saga instance first (optimistic concurrency): the caller's view is
 * stale and it must stop driving the saga. Not retriable as such: reload the instance instead.
 */
public class ConcurrentSagaUpdateException extends SagaException {
    private static final long serialVersionUID = 1L;

    public ConcurrentSagaUpdateException(String sagaId, long expectedVersion, long actualVersion) {
        super(sagaId, null, "saga " + sagaId + " was updated concurrently: expected version " + expectedVersion
                + " but the store has " + actualVersion, null, false);
    }
}
