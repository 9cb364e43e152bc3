package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Records every invocation and injects the configured failures. Shared by the orchestrators of one run. */
final class RecordingInterceptor implements SagaInterceptor {
    private final Map<String, FailureMode> stepFailures;
    private final Map<String, FailureMode> compensationFailures;
    private final Map<String, Integer> strikes = new HashMap<>();
    private final LostMessages lost;
    private final List<RecordedInvocation> invocations = new ArrayList<>();
    private final List<CompensationEvent> compensations = new ArrayList<>();
    /** The commands the orchestrators sent for each remote step: the attempts they started, answered or not. */
    private final Map<String, Integer> stepCommands = new HashMap<>();
    /** The attempt numbers of those commands, by step: an attempt started with none sent is counted from the history. */
    private final Map<String, Set<Integer>> stepCommandAttempts = new HashMap<>();
    /** The compensation commands lost, by step, as published: each turns up late once its step's next one is sent. */
    private final Map<String, List<Message>> heldCompensationCommands = new HashMap<>();
    /** The held compensation commands whose next one was sent: the kit delivers them ({@link #takeRedeliveries}). */
    private final List<Message> redeliveries = new ArrayList<>();

    /**
     * A compensation attempt starting ({@code started}) or succeeding, in the order they happened: unlike
     * the {@link RecordedInvocation}s, which are recorded as invocations end, it tells when each started. A remote
     * compensation starts when its command is published ({@link #commandObserver()}): its invocation is only the
     * handling of its reply, after the participant undid (that handling is recorded as a start too, a later one).
     */
    record CompensationEvent(String step, boolean started) {
    }

    /**
     * The topic a lost reply goes to instead of the orchestrator's: no one reads it, and a test may look at it. An
     * internal topic ({@code __}), which no wildcard matches: a consumer subscribed to {@code *-replies} or {@code *}
     * must not get the reply the saga was never to get.
     */
    static final String LOST_REPLIES = "__saga-test-kit-lost-replies";
    /**
     * The topic a lost command goes to instead of its participant's: no one reads it, and a test may look at it. An
     * internal topic ({@code __}), which no wildcard matches: a participant subscribed to {@code *-commands} must not
     * act on the command it was never to get.
     */
    static final String LOST_COMMANDS = "__saga-test-kit-lost-commands";

    RecordingInterceptor(Map<String, FailureMode> stepFailures, Map<String, FailureMode> compensationFailures,
                         LostMessages lost) {
        this.lost = lost;
        // Copies the run may add to: an upgrade injects failures into the steps of the version it upgrades to.
        this.stepFailures = new HashMap<>(stepFailures);
        this.compensationFailures = new HashMap<>(compensationFailures);
    }

    /**
     * Fails {@code step}'s action (or its compensation) as {@code mode} says from now on, in place of a failure injected
     * into it before, whose strikes are forgotten: {@code mode} counts from here.
     */
    synchronized void inject(String step, boolean compensation, FailureMode mode) {
        (compensation ? compensationFailures : stepFailures).put(step, mode);
        strikes.remove((compensation ? "compensation:" : "step:") + step);
    }

    @Override
    public synchronized void before(SagaInterceptor.Invocation invocation) {
        boolean compensation = invocation.kind() == Kind.COMPENSATION;
        String step = invocation.context().step();
        if (compensation) {
            compensations.add(new CompensationEvent(step, true));
        }
        FailureMode mode = (compensation ? compensationFailures : stepFailures).get(step);
        if (mode == null) {
            return;
        }
        int strike = strikes.merge((compensation ? "compensation:" : "step:") + step, 1, Integer::sum);
        if (strike <= mode.times()) {
            throw new InjectedFailure("injected failure " + strike + " of " + (compensation ? "the compensation of " : "step ")
                    + step + " (" + mode + ")");
        }
    }

    @Override
    public synchronized void after(SagaInterceptor.Invocation invocation, Throwable error) {
        invocations.add(new RecordedInvocation(invocations.size() + 1, invocation.kind(), invocation.context().sagaId(),
                invocation.context().step(), invocation.context().attempt(), invocation.context().idempotencyKey(),
                error == null, error == null ? null : error.getClass().getSimpleName() + ": " + error.getMessage()));
        if (invocation.kind() == Kind.COMPENSATION && error == null) {
            compensations.add(new CompensationEvent(invocation.context().step(), false));
        }
    }

    /**
     * Records the start of a remote step's attempt, or of a remote compensation's, when the orchestrator publishes its
     * command for the run's saga ({@link SagaRunReport#SAGA_ID}), and sends a step's or a compensation's command to be
     * lost ({@link LostMessages}) to {@link #LOST_COMMANDS} instead, where its participant never reads it (the attempt
     * was started all the same; a compensation's is delivered late, {@link #takeRedeliveries}); sends a reply of the
     * run's saga to be lost to {@link #LOST_REPLIES} instead, where neither the orchestrator nor a subscriber by a
     * wildcard reads it.
     */
    MessageInterceptor commandObserver() {
        return new MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, EventCodec codec) {
                // A command names the reply topic; its reply, which has the same step and phase, does not. Only the
                // run's saga's: the fixture may run sagas of its own on the kit's bus, with steps of the same names.
                if (message.header(SagaMessages.REPLY_TOPIC).isPresent()
                        && SagaRunReport.SAGA_ID.equals(message.sagaId().orElse(null))) {
                    if (commandSent(message)) {
                        return message.withTopic(LOST_COMMANDS);
                    }
                } else if (SagaRunReport.SAGA_ID.equals(message.sagaId().orElse(null))
                        && message.header(SagaMessages.STEP).isPresent() && loses(message)) {
                    return message.withTopic(LOST_REPLIES);
                }
                return message;
            }
        };
    }

    /** Whether {@code reply} (a message of the run's saga naming a step, not a command) is one to lose, counted. */
    private synchronized boolean loses(Message reply) {
        boolean compensation = SagaMessages.COMPENSATION.equals(reply.header(SagaMessages.PHASE).orElse(null));
        String step = reply.header(SagaMessages.STEP).orElseThrow();
        FailureMode mode = (compensation ? lost.compensationReplies() : lost.replies()).get(step);
        return mode != null
                && strikes.merge((compensation ? "lost compensation reply:" : "lost reply:") + step, 1, Integer::sum)
                <= mode.times();
    }

    /**
     * Records a command sent; whether it is one to lose (counted). A compensation's command lost is held, and handed to
     * the kit to deliver late once its step's next compensation command is sent (its retry, the operator's, a
     * recovery's): the participant then gets both, as from a broker that redelivers a command it seemed to lose.
     */
    private synchronized boolean commandSent(Message command) {
        String step = command.header(SagaMessages.STEP).orElse("");
        if (SagaMessages.COMPENSATION.equals(command.header(SagaMessages.PHASE).orElse(null))) {
            compensations.add(new CompensationEvent(step, true));
            FailureMode mode = lost.compensationCommands().get(step);
            if (mode != null && strikes.merge("lost compensation command:" + step, 1, Integer::sum) <= mode.times()) {
                heldCompensationCommands.computeIfAbsent(step, s -> new ArrayList<>()).add(command);
                return true;
            }
            List<Message> held = heldCompensationCommands.remove(step);
            if (held != null) {
                redeliveries.addAll(held);
            }
            return false;
        }
        stepCommands.merge(step, 1, Integer::sum);
        stepCommandAttempts.computeIfAbsent(step, s -> new HashSet<>())
                .add(attemptNumber(command.header(SagaMessages.ATTEMPT).orElse("")));
        FailureMode mode = lost.commands().get(step);
        return mode != null && strikes.merge("lost command:" + step, 1, Integer::sum) <= mode.times();
    }

    /** The lost compensation commands due to turn up late, in the order they were lost; taken once. */
    synchronized List<Message> takeRedeliveries() {
        List<Message> due = List.copyOf(redeliveries);
        redeliveries.clear();
        return due;
    }

    private static int attemptNumber(String attempt) {
        try {
            return Integer.parseInt(attempt);
        } catch (NumberFormatException e) {
            return 0; // not the engine's command: no attempt of the history matches it
        }
    }

    /**
     * The attempts started of {@code step}: its action's invocations (a local step's), the commands sent for it (a
     * remote step's, whose invocations are only the handlings of the replies that came), and the attempts of it that
     * {@code history} shows started ({@code STEP_WAITING}) with no command sent: its command factory, the remote
     * step's own code, threw, as a local action may.
     */
    synchronized int stepAttempts(String step, List<SagaTransition> history) {
        long actions = invocations.stream().filter(i -> i.kind() == Kind.ACTION && i.step().equals(step)).count();
        Set<Integer> sent = stepCommandAttempts.getOrDefault(step, Set.of());
        long unsent = history.stream()
                .filter(t -> t.type() == TransitionType.STEP_WAITING && step.equals(t.step()) && !sent.contains(t.attempt()))
                .mapToInt(SagaTransition::attempt).distinct().count();
        return (int) (actions + unsent) + stepCommands.getOrDefault(step, 0);
    }

    synchronized List<CompensationEvent> compensationEvents() {
        return List.copyOf(compensations);
    }

    synchronized List<RecordedInvocation> invocations() {
        return List.copyOf(invocations);
    }
}
