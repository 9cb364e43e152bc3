package io.streamsaga.saga;

/**
 * Wraps every invocation of an action, a compensation or a reply handler (tracing, failure injection in
 * the test kit). {@link #before} may throw to fail the invocation without running it. Implementations
 * must be thread-safe.
 */
public interface SagaInterceptor {

    /** What is invoked. */
    enum Kind { ACTION, COMPENSATION, REPLY }

    /**
     * One invocation.
     *
     * @param kind    action, compensation or reply handling
     * @param context the step context (saga id, step, attempt, idempotency key)
     */
    record Invocation(Kind kind, StepContext context) {
    }

    /** Before the invocation; throwing fails it (the user code does not run). */
    default void before(Invocation invocation) throws Exception {
    }

    /** After the invocation, with its error or null on success. */
    default void after(Invocation invocation, Throwable error) {
    }
}
