package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaInterceptor;

/**
 * One recorded invocation of an action, a reply handler or a compensation during a test-kit run.
 *
 * @param sequence       order of the invocation within the run (across crashes and orchestrators)
 * @param kind           action, a remote step's reply handling, or compensation (a remote one's: its reply handling)
 * @param sagaId         the saga instance
 * @param step           the step
 * @param attempt        the attempt number
 * @param idempotencyKey the key the application received
 * @param succeeded      whether it returned normally
 * @param error          the error class and message when it failed, else null
 */
public record RecordedInvocation(int sequence, SagaInterceptor.Kind kind, String sagaId, String step, int attempt,
                         String idempotencyKey, boolean succeeded, String error) {

    /** Whether this ran a step forward (a local action or the handling of a remote reply). */
    public boolean isForward() {
        return kind != SagaInterceptor.Kind.COMPENSATION;
    }
}
