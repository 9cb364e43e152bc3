package io.streamsaga.saga;

/**
 * Lifecycle hooks of an orchestrator. Every method has a no-op default. Called on the thread that drives
 * the saga, after the transition is stored; a listener that throws is logged and ignored, also when it throws
 * an {@link Error} such as an {@code AssertionError} (logged at ERROR): a listener never changes the saga's
 * course. Only an Error that stands for the process dying, a {@link VirtualMachineError} or a test's
 * {@link io.streamsaga.saga.spi.SimulatedProcessCrash}, or a {@link ThreadDeath} (the thread stopped, which its
 * catcher must let die), stops the run as an Error in an action does
 * ({@link SagaOrchestrator}). Implementations must be thread-safe and quick. A hook may call the orchestrator
 * (cancel the saga, say; not once its every step succeeded: {@link SagaOrchestrator#cancel} refuses, the saga
 * completes): the hooks of what that does run at once, so listeners registered after that one hear
 * of them before the current hook. The lifecycle event of a transition is published before any listener hears
 * of it.
 */
public interface SagaListener {

    default void onStarted(SagaInstance instance) {
    }

    default void onStepCompleted(SagaInstance instance, String step) {
    }

    default void onStepFailed(SagaInstance instance, String step, SagaFailure failure) {
    }

    /**
     * The saga begins compensating; {@code instance.failure()} says why. Also when an operator's
     * {@link SagaOrchestrator#retryCompensation} or {@link SagaOrchestrator#skipCompensation} sends a saga that needed
     * attention back to compensating (after {@link #onFailed}): it is heard of once more then.
     */
    default void onCompensationStarting(SagaInstance instance) {
    }

    default void onStepCompensated(SagaInstance instance, String step) {
    }

    default void onCompleted(SagaInstance instance) {
    }

    default void onCompensated(SagaInstance instance) {
    }

    /**
     * The saga needs attention: a compensation kept failing ({@code instance.compensationFailure()} says which),
     * or a retriable step exhausted its retries ({@code compensationFailure()} is null, nothing was compensated:
     * {@code instance.failure()} names the step). Heard once more when an operator's
     * {@link SagaOrchestrator#skipCompensation} leaves the saga needing attention for another failed compensation,
     * which {@code compensationFailure()} then names.
     */
    default void onFailed(SagaInstance instance) {
    }

    /**
     * An operator's {@link SagaOrchestrator#retryCompensation} sent a saga that needed attention forward again (status
     * {@code RUNNING}): a retriable step that exhausted its retries, or a step whose outcome the store refused, is
     * attempted once more. Called once the retry is stored, before the step runs. A retry that compensates again is
     * {@link #onCompensationStarting} instead. The instance, running again, holds no failure: {@code retriedAfter} is
     * what it needed attention for and is retried after, as the error of its {@code retried} lifecycle event and the
     * detail of its {@code SAGA_RETRIED} transition name it.
     */
    default void onRetried(SagaInstance instance, SagaFailure retriedAfter) {
    }

    /**
     * An operator's {@link SagaOrchestrator#markResolved} of a saga that needed attention is stored (status
     * {@code RESOLVED}, terminal; {@code instance.failure()} and {@code compensationFailure()} say what was resolved):
     * called once, on the thread that made the call, after the {@code resolved} lifecycle event; not when the store
     * refused the write or another orchestrator wrote the saga first (the call throws then, and nothing is resolved).
     */
    default void onResolved(SagaInstance instance) {
    }
}
