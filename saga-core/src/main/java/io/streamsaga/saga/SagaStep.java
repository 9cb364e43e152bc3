package io.streamsaga.saga;

import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.Optional;

/**
 * One step of a {@link SagaDefinition}: a local action (synchronous or asynchronous) or a remote command
 * completed by its reply, an optional compensation (synchronous, asynchronous, or a command completed by its
 * reply), retry policies and timeouts. Immutable and thread-safe; built through {@link SagaDefinition.Builder}.
 *
 * @param <D> the saga data type
 */
public final class SagaStep<D> {
    private final String name;
    private final StepRole role;
    private final int index;
    private final int group;
    private final SagaAction<D> action;
    private final AsyncSagaAction<D> asyncAction;
    private final Remote<D> remote;
    private final SagaCompensation<D> compensation;
    private final AsyncSagaCompensation<D> asyncCompensation;
    private final RemoteCompensation<D> remoteCompensation;
    private final RetryPolicy retryPolicy;
    private final RetryPolicy compensationRetryPolicy;
    private final Duration timeout;
    private final Duration compensationTimeout;

    SagaStep(String name, StepRole role, int index, int group, SagaAction<D> action, AsyncSagaAction<D> asyncAction,
             Remote<D> remote, SagaCompensation<D> compensation, AsyncSagaCompensation<D> asyncCompensation,
             RemoteCompensation<D> remoteCompensation, RetryPolicy retryPolicy, RetryPolicy compensationRetryPolicy,
             Duration timeout, Duration compensationTimeout) {
        this.name = name;
        this.role = role;
        this.index = index;
        this.group = group;
        this.action = action;
        this.asyncAction = asyncAction;
        this.remote = remote;
        this.compensation = compensation;
        this.asyncCompensation = asyncCompensation;
        this.remoteCompensation = remoteCompensation;
        this.retryPolicy = retryPolicy;
        this.compensationRetryPolicy = compensationRetryPolicy;
        this.timeout = timeout;
        this.compensationTimeout = compensationTimeout;
    }

    public String name() {
        return name;
    }

    public StepRole role() {
        return role;
    }

    /** Position among all steps of the definition (members of a parallel group are consecutive). */
    public int index() {
        return index;
    }

    /** Position of the step's group: steps of one parallel group share it; a plain step is its own group. */
    public int group() {
        return group;
    }

    /** The synchronous action, or null. */
    public SagaAction<D> action() {
        return action;
    }

    /** The asynchronous action, or null. */
    public AsyncSagaAction<D> asyncAction() {
        return asyncAction;
    }

    /** The remote command and reply handling, when this is a remote step. */
    public Optional<Remote<D>> remote() {
        return Optional.ofNullable(remote);
    }

    public boolean isRemote() {
        return remote != null;
    }

    /** The synchronous compensation, or null (none, or an asynchronous or remote one). */
    public SagaCompensation<D> compensation() {
        return compensation;
    }

    /** The asynchronous compensation, or null (none, or a synchronous or remote one). */
    public AsyncSagaCompensation<D> asyncCompensation() {
        return asyncCompensation;
    }

    /** The compensation's command and reply handling, when the step is undone by a command on the bus. */
    public Optional<RemoteCompensation<D>> remoteCompensation() {
        return Optional.ofNullable(remoteCompensation);
    }

    /** Whether the step has a compensation (synchronous, asynchronous or remote): false when there is nothing to undo. */
    public boolean hasCompensation() {
        return compensation != null || asyncCompensation != null || remoteCompensation != null;
    }

    /** Whether the step sends commands and awaits replies on the bus (a remote action or a remote compensation). */
    public boolean usesBus() {
        return remote != null || remoteCompensation != null;
    }

    public RetryPolicy retryPolicy() {
        return retryPolicy;
    }

    public RetryPolicy compensationRetryPolicy() {
        return compensationRetryPolicy;
    }

    /** How long an asynchronous action or a remote reply may take; null for none. */
    public Duration timeout() {
        return timeout;
    }

    /**
     * How long each attempt of a compensation the engine does not block on (asynchronous, remote, or a parallel
     * group member's) may take before the attempt fails: the one set with
     * {@link SagaDefinition.StepBuilder#compensationTimeout}, else the step's {@link #timeout()}; null for none.
     */
    public Duration compensationTimeout() {
        return compensationTimeout;
    }

    @Override
    public String toString() {
        return "SagaStep[" + name + ", " + role + (remote != null ? ", remote " + remote.commandTopic() : "") + "]";
    }

    /**
     * A remote step's command and reply handling.
     *
     * @param commandTopic where the command is published
     * @param commandType  the class of the commands, when declared ({@link SagaDefinition.StepBuilder#command(String,
     *                     Class, CommandFactory)}), else null
     * @param command      builds the command event from the data
     * @param replyType    the class the reply is decoded into
     * @param onReply      applies the reply to the data (throws to fail the step)
     * @param <D>          the saga data type
     */
    public record Remote<D>(String commandTopic, Class<?> commandType, CommandFactory<D> command, Class<?> replyType,
                            ReplyHandler<D, Object> onReply) {
    }

    /**
     * A remote compensation's command and reply handling: the compensation completes when the correlated
     * reply arrives (the wait is persisted: the step stays {@code COMPENSATING}); the step's
     * {@link SagaStep#compensationTimeout()}, when it has one, bounds each attempt's wait.
     *
     * @param commandTopic where the command is published
     * @param commandType  the class of the commands, when declared ({@link SagaDefinition.StepBuilder#compensationCommand(
     *                     String, Class, CommandFactory)}), else null
     * @param command      builds the command event from the data
     * @param replyType    the class the reply is decoded into
     * @param onReply      checks the reply (throws to fail the attempt)
     * @param <D>          the saga data type
     */
    public record RemoteCompensation<D>(String commandTopic, Class<?> commandType, CommandFactory<D> command,
                                        Class<?> replyType, CompensationReplyHandler<D, Object> onReply) {
    }
}
