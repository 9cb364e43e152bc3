package io.streamsaga.saga;

/**
 * Wraps every invocation of an action, a compensation or a reply handler (tracing, failure injection in
 * the test kit). {@link #before} may throw to fail the invocation without running it. Implementations
 * must be thread-safe: {@code after()} may be called on another thread than {@code before()}.
 *
 * <p><b>Pairing.</b> Every {@code before()} that was called is matched by exactly one {@code after()} of
 * the same interceptor, with an equal {@link Invocation}, and there is no {@code after()} without its
 * {@code before()}, so a tracing interceptor can open a span in one and close it in the other:
 * <ul>
 *   <li>a synchronous action, compensation or reply handler: {@code after()} when it returns or throws (an
 *       {@code Error} too, before it stops the run);</li>
 *   <li>an asynchronous action or compensation, a parallel member's action or compensation (on the parallel
 *       executor): {@code after()} when its stage completes, or when its timeout fails the attempt first
 *       (with the {@link SagaTimeoutException}; the stage's late completion is then ignored and calls no
 *       {@code after()}), or when the run stops first ({@link SagaOrchestrator#close()}, a store failure,
 *       another orchestrator taking the saga over: with a {@link SagaException} saying so; the saga resumes on
 *       {@code recover()}, whose new attempt is a new invocation). {@link SagaOrchestrator#cancel} ends none:
 *       the saga compensates only once the running action's stage completed (or timed out);</li>
 *   <li>a remote step or a remote compensation: the invocation ({@link Kind#REPLY} for a step's,
 *       {@link Kind#COMPENSATION} for a compensation's) is the handling of its decoded reply by its reply handler,
 *       in whichever process receives it (also one that took the saga over after a restart); a reply that cannot
 *       be decoded is dead-lettered, not taken, and is none, nor is sending its command, so a reply that never
 *       comes (a timeout) leaves nothing open. A failure injected by {@code before()} thus happens after the
 *       participant acted, like a reply handler's rejection;</li>
 *   <li>when a {@code before()} throws, the invocation ends there: that interceptor and the ones before it
 *       get {@code after()} with its error, the ones after it are called neither.</li>
 * </ul>
 *
 * <p><b>Failures.</b> What {@code before()} throws fails the invocation as if the user code had thrown it: an
 * Exception is a failed attempt (retried per the step's policy), an {@code Error} stops the run as an Error in the
 * action does ({@link SagaOrchestrator}: {@code recover()} runs it again). What {@code after()} throws is logged
 * and ignored, an {@code Error} such as an {@code AssertionError} too (at ERROR), as a {@link SagaListener}'s is:
 * the invocation already happened and its outcome is recorded as the saga's, whatever its interceptors do. Only an
 * Error that stands for the process dying, a {@link VirtualMachineError} or a test's
 * {@link io.streamsaga.saga.spi.SimulatedProcessCrash}, or a {@link ThreadDeath} (the thread stopped), stops the run
 * from {@code after()} (a reply's handling's
 * too), as it would in the action: the outcome is then not recorded, and {@code recover()} runs the invocation again.
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

    /**
     * After the invocation, with its error or null on success: once for each {@link #before} (see the
     * pairing rule above). What it throws is logged and ignored, an Error too, except a
     * {@link VirtualMachineError}, a {@link io.streamsaga.saga.spi.SimulatedProcessCrash} or a {@link ThreadDeath} (see
     * "Failures" above).
     */
    default void after(Invocation invocation, Throwable error) {
    }
}
