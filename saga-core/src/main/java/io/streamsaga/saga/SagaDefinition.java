package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.BinaryOperator;
import java.util.function.Consumer;

/**
 * A named, versioned saga over the application's data type {@code D}: an ordered list of named steps,
 * some of them grouped to run in parallel (fork/join). Immutable and thread-safe; build it once with
 * {@link #builder(String, Class)} and start instances with a {@code SagaOrchestrator}.
 *
 * <pre>{@code
 * SagaDefinition<OrderData> saga = SagaDefinition.builder("order-saga", OrderData.class)
 *     .version(1).dataType("order-saga-data")
 *     .step("create-order").action((d, ctx) -> d.withOrderId(orders.create(d, ctx.idempotencyKey())))
 *         .compensation((d, ctx) -> orders.cancel(d.orderId(), ctx.idempotencyKey()))
 *     .step("reserve-inventory").action(...).compensation(...)
 *     .pivot("process-payment").command("payment-commands", ProcessPayment.class, (d, ctx) -> new ProcessPayment(...))
 *         .onReply(PaymentReply.class, (d, reply) -> ...).timeout(Duration.ofMinutes(5))
 *     .retriable("schedule-shipping").action(...)
 *     .build();
 * }</pre>
 *
 * <p>Step names are unique within the definition and must not contain {@code '/'}, which separates them
 * from the other parts of idempotency keys and command message ids ({@code <sagaId>/<step>},
 * {@code <sagaId>/<step>/compensation}); an explicit saga id must not contain one either
 * ({@link SagaOrchestrator#start(SagaDefinition, String, String, Object)}).
 *
 * <p>Roles are checked at build time: compensatable steps come first, then at most one pivot, then
 * retriable steps only. A compensatable step after the pivot (or after a retriable step) is rejected,
 * because nothing could undo the steps it would have to follow.
 *
 * @param <D> the saga data type (immutable; records recommended)
 */
public final class SagaDefinition<D> {
    private final String name;
    private final int version;
    private final String dataType;
    private final Class<D> dataClass;
    private final List<SagaStep<D>> steps;
    private final List<List<SagaStep<D>>> groups;
    private final List<BinaryOperator<D>> merges;

    private SagaDefinition(Builder<D> builder, List<SagaStep<D>> steps, List<List<SagaStep<D>>> groups,
                           List<BinaryOperator<D>> merges) {
        this.name = builder.name;
        this.version = builder.version;
        this.dataType = builder.dataType != null ? builder.dataType : builder.name + "-data";
        this.dataClass = builder.dataClass;
        this.steps = steps;
        this.groups = groups;
        this.merges = merges;
    }

    /** Starts a definition named {@code name} over saga data of {@code dataClass}. */
    public static <D> Builder<D> builder(String name, Class<D> dataClass) {
        return new Builder<>(name, dataClass);
    }

    public String name() {
        return name;
    }

    public int version() {
        return version;
    }

    /** The stable type id the saga data is stored under. */
    public String dataType() {
        return dataType;
    }

    public Class<D> dataClass() {
        return dataClass;
    }

    /** Every step in order (a parallel group's members consecutively). */
    public List<SagaStep<D>> steps() {
        return steps;
    }

    /** The steps grouped: a plain step is a group of one; a parallel group holds its members. */
    public List<List<SagaStep<D>>> groups() {
        return groups;
    }

    /** How a group merges the data each member returns into the saga data (last writer wins by default). */
    public BinaryOperator<D> merge(int group) {
        return merges.get(group);
    }

    /**
     * Whether group {@code group} has a merge of its own, which may throw (a member's effect then compensated: see
     * {@link ParallelBuilder#merge}); the default one, the member's result replacing the data, cannot.
     */
    boolean hasOwnMerge(int group) {
        return merges.get(group) != Builder.LAST_WRITER_WINS;
    }

    /** The named step. */
    public SagaStep<D> step(String stepName) {
        for (SagaStep<D> step : steps) {
            if (step.name().equals(stepName)) {
                return step;
            }
        }
        throw new ConfigurationException("saga '" + name + "' has no step " + StreamSagaException.quote(stepName)
                + "; its steps are "
                + steps.stream().map(SagaStep::name).toList());
    }

    /** The definition as a Mermaid flowchart: steps forward, compensations backward on failure. */
    public String toMermaid() {
        return SagaDiagrams.flowchart(this);
    }

    @Override
    public String toString() {
        return "SagaDefinition[" + name + " v" + version + ", steps=" + steps.stream().map(SagaStep::name).toList() + "]";
    }

    /** Builds a {@link SagaDefinition}; not thread-safe. */
    public static final class Builder<D> {
        private final String name;
        private final Class<D> dataClass;
        private int version = 1;
        private String dataType;
        private final List<List<StepBuilder<D>>> groups = new ArrayList<>();
        private final List<BinaryOperator<D>> merges = new ArrayList<>();

        private Builder(String name, Class<D> dataClass) {
            ConfigurationException.require(name != null && !name.isBlank(), "saga name must not be blank, but was '%s'", name);
            this.name = name;
            this.dataClass = Objects.requireNonNull(dataClass, "dataClass");
        }

        /** The definition version (1 by default); a running instance finishes under its own version. */
        public Builder<D> version(int version) {
            ConfigurationException.require(version >= 1, "saga '%s': version must be 1 or more, but was %s", name, version);
            this.version = version;
            return this;
        }

        /** The stable type id of the saga data in stores ({@code <name>-data} by default). */
        public Builder<D> dataType(String dataType) {
            ConfigurationException.require(dataType != null && !dataType.isBlank(),
                    "saga '%s': dataType must not be blank, but was '%s'", name, dataType);
            this.dataType = dataType;
            return this;
        }

        /**
         * A compensatable step: local with {@code action(...)} or {@code asyncAction(...)}, remote with
         * {@code command(...)} and {@code onReply(...)}.
         */
        public StepBuilder<D> step(String stepName) {
            return addSingle(stepName, StepRole.COMPENSATABLE);
        }

        /**
         * The same as {@link #step}.
         *
         * @deprecated use {@link #step}: a step is remote when it has {@code command(...)}, whatever declares it
         */
        @Deprecated
        public StepBuilder<D> remoteStep(String stepName) {
            return step(stepName);
        }

        /** The pivot step: no compensation; once it succeeds the saga goes forward only. */
        public StepBuilder<D> pivot(String stepName) {
            return addSingle(stepName, StepRole.PIVOT);
        }

        /** A retriable step after the pivot: retried until it succeeds, never compensated. */
        public StepBuilder<D> retriable(String stepName) {
            return addSingle(stepName, StepRole.RETRIABLE);
        }

        /** A fork/join group of compensatable steps that run concurrently and must all succeed. */
        public Builder<D> parallel(Consumer<ParallelBuilder<D>> members) {
            ParallelBuilder<D> group = new ParallelBuilder<>(this);
            members.accept(group);
            ConfigurationException.require(!group.members.isEmpty(), "saga '%s': a parallel group needs at least one step", name);
            groups.add(group.members);
            merges.add(group.merge);
            return this;
        }

        private StepBuilder<D> addSingle(String stepName, StepRole role) {
            StepBuilder<D> step = new StepBuilder<>(this, stepName, role, false);
            groups.add(new ArrayList<>(List.of(step)));
            merges.add(lastWriterWins());
            return step;
        }

        /** The default merge, one instance, so that a group's own merge is told from it ({@link #hasOwnMerge}). */
        private static final BinaryOperator<Object> LAST_WRITER_WINS = (current, result) -> result;

        @SuppressWarnings("unchecked")
        private static <D> BinaryOperator<D> lastWriterWins() {
            return (BinaryOperator<D>) LAST_WRITER_WINS;
        }

        /** Validates the steps and builds the definition. */
        public SagaDefinition<D> build() {
            ConfigurationException.require(!groups.isEmpty(), "saga '%s' has no steps", name);
            List<SagaStep<D>> steps = new ArrayList<>();
            List<List<SagaStep<D>>> builtGroups = new ArrayList<>();
            Set<String> names = new HashSet<>();
            String pivot = null;
            String firstRetriable = null;
            for (int g = 0; g < groups.size(); g++) {
                List<SagaStep<D>> built = new ArrayList<>();
                for (StepBuilder<D> sb : groups.get(g)) {
                    ConfigurationException.require(names.add(sb.name), "saga '%s': step name '%s' is used twice", name, sb.name);
                    if (sb.role == StepRole.COMPENSATABLE && (pivot != null || firstRetriable != null)) {
                        String before = pivot != null ? "the pivot step '" + pivot + "'" : "the retriable step '" + firstRetriable + "'";
                        if (sb.member) { // members are always compensatable: retriable(...) cannot be declared in a group
                            throw new ConfigurationException("saga '" + name + "': the parallel group of step '" + sb.name
                                    + "' comes after " + before + "; a parallel group's members are compensatable, so a group "
                                    + "must precede the pivot (declare the steps after it one by one with retriable(...))");
                        }
                        throw new ConfigurationException("saga '" + name + "': compensatable step '" + sb.name + "' comes after "
                                + before + "; steps after the pivot cannot be undone and must be retriable (declare it with "
                                + "retriable(\"" + sb.name + "\"))");
                    }
                    if (sb.role == StepRole.PIVOT) {
                        ConfigurationException.require(pivot == null, "saga '%s': step '%s' is a second pivot; '%s' is already the pivot",
                                name, sb.name, pivot);
                        ConfigurationException.require(firstRetriable == null,
                                "saga '%s': pivot step '%s' comes after the retriable step '%s'; the pivot must precede retriable steps",
                                name, sb.name, firstRetriable);
                        pivot = sb.name;
                    }
                    if (sb.role == StepRole.RETRIABLE && firstRetriable == null) {
                        firstRetriable = sb.name;
                    }
                    SagaStep<D> step = sb.build(steps.size(), g, groups.get(g).size() > 1);
                    steps.add(step);
                    built.add(step);
                }
                builtGroups.add(List.copyOf(built));
            }
            return new SagaDefinition<>(this, List.copyOf(steps), List.copyOf(builtGroups), List.copyOf(merges));
        }
    }

    /** Declares the members of a parallel group; not thread-safe. */
    public static final class ParallelBuilder<D> {
        private final Builder<D> owner;
        private final List<StepBuilder<D>> members = new ArrayList<>();
        private BinaryOperator<D> merge = Builder.lastWriterWins();

        private ParallelBuilder(Builder<D> owner) {
            this.owner = owner;
        }

        /** A compensatable member (local or, with {@code command(...)}, remote). */
        public StepBuilder<D> step(String stepName) {
            StepBuilder<D> step = new StepBuilder<>(owner, stepName, StepRole.COMPENSATABLE, true);
            members.add(step);
            return step;
        }

        /**
         * The same as {@link #step}.
         *
         * @deprecated use {@link #step}: a member is remote when it has {@code command(...)}, whatever declares it
         */
        @Deprecated
        public StepBuilder<D> remoteStep(String stepName) {
            return step(stepName);
        }

        /**
         * How the data a member returns is merged into the saga data as members complete
         * ({@code (current, memberResult) -> merged}); by default the member's result replaces it, so
         * members that change different fields should supply a merge. A merge that throws fails the member for
         * good, whatever its retry policy: its action took effect, so it is compensated (an idempotent retry
         * would return the same result).
         */
        public ParallelBuilder<D> merge(BinaryOperator<D> merge) {
            this.merge = Objects.requireNonNull(merge, "merge");
            return this;
        }
    }

    /** Configures one step; not thread-safe. Chain the next step straight from it. */
    public static final class StepBuilder<D> {
        private final Builder<D> owner;
        private final String name;
        private final StepRole role;
        private final boolean member;
        private SagaAction<D> action;
        private AsyncSagaAction<D> asyncAction;
        private String commandTopic;
        private Class<?> commandType; // null: not declared, known only when the factory runs
        private CommandFactory<D> command;
        private Class<?> replyType;
        private ReplyHandler<D, Object> onReply;
        private SagaCompensation<D> compensation;
        private AsyncSagaCompensation<D> asyncCompensation;
        private String compensationTopic;
        private Class<?> compensationCommandType;
        private CommandFactory<D> compensationCommand;
        private Class<?> compensationReplyType;
        private CompensationReplyHandler<D, Object> onCompensationReply;
        private RetryPolicy retry;
        private RetryPolicy compensationRetry; // null: RetryPolicy.DEFAULT
        private Duration timeout;
        private Duration compensationTimeout;

        private StepBuilder(Builder<D> owner, String name, StepRole role, boolean member) {
            ConfigurationException.require(name != null && !name.isBlank(), "saga '%s': step name must not be blank, but was '%s'",
                    owner.name, name);
            // '/' separates the parts of command message ids and idempotency keys ('<saga>/<step>/compensation'):
            // a step named 'x/compensation' would share them with the compensation of step 'x'.
            ConfigurationException.require(name.indexOf('/') < 0, "saga '%s': step name '%s' must not contain '/' "
                    + "(it separates the step from the rest of its command ids and idempotency keys)", owner.name, name);
            this.owner = owner;
            this.name = name;
            this.role = role;
            this.member = member;
        }

        /** The synchronous local action; returns the (possibly updated) data. */
        public StepBuilder<D> action(SagaAction<D> action) {
            this.action = Objects.requireNonNull(action, "action");
            return this;
        }

        /** The asynchronous local action; its stage completes with the (possibly updated) data. */
        public StepBuilder<D> asyncAction(AsyncSagaAction<D> action) {
            this.asyncAction = Objects.requireNonNull(action, "action");
            return this;
        }

        /**
         * Makes this a remote step: sends the command built by {@code factory} to {@code topic}. The command's class must
         * be registered in the bus's {@code TypeRegistry}, which gives its type id on the wire; this form learns the class
         * only when the factory runs, so a class left out fails the step at each send. Declare the class with
         * {@link #command(String, Class, CommandFactory)} to have the orchestrator check it before any saga starts.
         */
        public StepBuilder<D> command(String topic, CommandFactory<D> factory) {
            this.commandTopic = requireCommandTopic(topic, "command topic");
            this.commandType = null;
            this.command = Objects.requireNonNull(factory, "factory");
            return this;
        }

        /**
         * Makes this a remote step whose commands are of class {@code type}: sends the command built by {@code factory}
         * to {@code topic}. The orchestrator refuses, where the definition meets its bus ({@link SagaOrchestrator.Builder#build}
         * for a registered definition, else its first start), a {@code type} the bus's {@code TypeRegistry} does not
         * register, naming the saga, the step, the class and the call that registers it; a command the factory builds of
         * another class, a subclass of {@code type} included (the registry gives a type id to a class, not to its
         * subclasses), fails the step with a {@link ConfigurationException}.
         */
        public StepBuilder<D> command(String topic, Class<?> type, CommandFactory<D> factory) {
            command(topic, factory);
            this.commandType = Objects.requireNonNull(type, "type");
            return this;
        }

        /**
         * How a remote step's reply (decoded into {@code type}) updates the data; throw to fail the step. {@code type}
         * is a class the orchestrator's bus's codec decodes to (registered in its {@code TypeRegistry}, a
         * {@code JsonNode} or {@code Message}): the orchestrator refuses the definition otherwise, where it meets the
         * bus ({@link SagaOrchestrator.Builder#build}, or its first start). A reply the codec cannot decode to it (a
         * version newer than the registry knows) is dead-lettered, not handed to the handler, and the step waits on.
         */
        @SuppressWarnings("unchecked")
        public <R> StepBuilder<D> onReply(Class<R> type, ReplyHandler<D, R> handler) {
            this.replyType = Objects.requireNonNull(type, "type");
            this.onReply = (ReplyHandler<D, Object>) Objects.requireNonNull(handler, "handler");
            return this;
        }

        /** Undoes the step; must be idempotent by the context's idempotency key. */
        public StepBuilder<D> compensation(SagaCompensation<D> compensation) {
            this.compensation = Objects.requireNonNull(compensation, "compensation");
            return this;
        }

        /**
         * Undoes the step asynchronously: the stage completes when the effect is undone (the engine does not
         * block on it); must be idempotent by the context's idempotency key.
         */
        public StepBuilder<D> asyncCompensation(AsyncSagaCompensation<D> compensation) {
            this.asyncCompensation = Objects.requireNonNull(compensation, "compensation");
            return this;
        }

        /**
         * Undoes the step by a command on the bus: sends the command built by {@code factory} to {@code topic}
         * and completes when the reply declared with {@link #onCompensationReply} arrives. The participant
         * must undo idempotently by the command's {@link SagaMessages#IDEMPOTENCY_KEY} and answer with
         * {@link SagaMessages#reply}.
         */
        public StepBuilder<D> compensationCommand(String topic, CommandFactory<D> factory) {
            this.compensationTopic = requireCommandTopic(topic, "compensation command topic");
            this.compensationCommandType = null;
            this.compensationCommand = Objects.requireNonNull(factory, "factory");
            return this;
        }

        /**
         * As {@link #compensationCommand(String, CommandFactory)}, with the commands' class declared, checked against the
         * bus's {@code TypeRegistry} as {@link #command(String, Class, CommandFactory)}'s.
         */
        public StepBuilder<D> compensationCommand(String topic, Class<?> type, CommandFactory<D> factory) {
            compensationCommand(topic, factory);
            this.compensationCommandType = Objects.requireNonNull(type, "type");
            return this;
        }

        /** A legal topic name ({@link TopicPattern#requireTopicName}), refused here rather than at every send. */
        private String requireCommandTopic(String topic, String what) {
            try {
                return TopicPattern.requireTopicName(topic);
            } catch (ConfigurationException e) {
                throw new ConfigurationException("step '" + name + "': " + what + ": " + e.getMessage());
            }
        }

        /**
         * How the reply to the compensation command (decoded into {@code type}) is checked; throw to fail the attempt.
         * {@code type} must be a class the bus's codec decodes to, as {@link #onReply}'s; a reply the codec cannot decode
         * to it is dead-lettered, not handed to the handler, and the compensation waits on.
         */
        @SuppressWarnings("unchecked")
        public <R> StepBuilder<D> onCompensationReply(Class<R> type, CompensationReplyHandler<D, R> handler) {
            this.compensationReplyType = Objects.requireNonNull(type, "type");
            this.onCompensationReply = (CompensationReplyHandler<D, Object>) Objects.requireNonNull(handler, "handler");
            return this;
        }

        /** Retries of the action (none by default; retriable steps retry without limit by default). */
        public StepBuilder<D> retry(RetryPolicy policy) {
            this.retry = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /**
         * Retries of the compensation ({@link RetryPolicy#DEFAULT} by default); a step with no compensation (a pivot, a
         * retriable step) refuses it when built.
         */
        public StepBuilder<D> compensationRetry(RetryPolicy policy) {
            this.compensationRetry = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /**
         * How long an asynchronous action or a remote reply may take before the attempt fails; it bounds in the
         * same way each attempt of a compensation the engine does not block on (asynchronous, remote, or a
         * parallel group member's), unless the compensation has its own {@link #compensationTimeout}. Without one the
         * engine waits as long as it takes: an asynchronous action whose stage never completes leaves the saga
         * {@code RUNNING} for ever, and {@code COMPENSATING} for ever once cancelled
         * ({@link SagaOrchestrator#cancel} waits for the outcome of an action in flight); give a step that may hang
         * a timeout. A synchronous action outside a parallel group of two or more runs to its end on the thread that
         * drives the saga: on such a step a timeout bounds only an asynchronous or remote compensation without a
         * {@link #compensationTimeout} of its own, and one with no such compensation refuses it when built, rather than
         * ignore it.
         */
        public StepBuilder<D> timeout(Duration timeout) {
            this.timeout = ConfigurationException.requirePositive(timeout, "step '" + name + "': timeout");
            return this;
        }

        /**
         * How long each attempt of the compensation may take before it fails (a {@link SagaTimeoutException},
         * retried per {@link #compensationRetry}), in place of the step's {@link #timeout}: for an undo slower
         * than the action, or a remote one. It bounds a compensation the engine does not block on (asynchronous,
         * remote, or a parallel group member's), so a step with no compensation, or with a synchronous one
         * outside a parallel group of two or more (a group of one runs it on the driving thread), rejects it
         * when built.
         */
        public StepBuilder<D> compensationTimeout(Duration timeout) {
            this.compensationTimeout = ConfigurationException.requirePositive(timeout,
                    "step '" + name + "': compensationTimeout");
            return this;
        }

        public StepBuilder<D> step(String stepName) {
            return owner().step(stepName);
        }

        /**
         * The same as {@link #step}.
         *
         * @deprecated use {@link #step}: a step is remote when it has {@code command(...)}, whatever declares it
         */
        @Deprecated
        public StepBuilder<D> remoteStep(String stepName) {
            return owner().step(stepName);
        }

        public StepBuilder<D> pivot(String stepName) {
            return owner().pivot(stepName);
        }

        public StepBuilder<D> retriable(String stepName) {
            return owner().retriable(stepName);
        }

        public Builder<D> parallel(Consumer<ParallelBuilder<D>> members) {
            return owner().parallel(members);
        }

        public SagaDefinition<D> build() {
            return owner().build();
        }

        private Builder<D> owner() {
            // Chaining from a member would silently add the next step outside its group.
            ConfigurationException.require(!member, "step '%s' is a member of a parallel group: declare each member "
                    + "with group.step(...) as a statement, and continue the saga after parallel(...)", name);
            return owner;
        }

        /** {@code concurrent}: a member of a parallel group of two or more (its compensation runs on the parallel executor). */
        SagaStep<D> build(int index, int group, boolean concurrent) {
            String saga = owner.name;
            int kinds = (action != null ? 1 : 0) + (asyncAction != null ? 1 : 0) + (command != null ? 1 : 0);
            ConfigurationException.require(kinds == 1, "saga '%s': step '%s' needs exactly one of action(...), asyncAction(...) "
                    + "or command(...), but has %s", saga, name, kinds);
            ConfigurationException.require((command == null) == (onReply == null),
                    "saga '%s': step '%s' needs both command(...) and onReply(...) to be a remote step", saga, name);
            int compensations = (compensation != null ? 1 : 0) + (asyncCompensation != null ? 1 : 0)
                    + (compensationCommand != null ? 1 : 0);
            ConfigurationException.require(compensations <= 1, "saga '%s': step '%s' needs at most one of compensation(...), "
                    + "asyncCompensation(...) or compensationCommand(...), but has %s", saga, name, compensations);
            ConfigurationException.require((compensationCommand == null) == (onCompensationReply == null),
                    "saga '%s': step '%s' needs both compensationCommand(...) and onCompensationReply(...) for a remote "
                    + "compensation", saga, name);
            ConfigurationException.require(role == StepRole.COMPENSATABLE || compensations == 0,
                    "saga '%s': %s step '%s' cannot have a compensation (only compensatable steps are undone)",
                    saga, role.name().toLowerCase(java.util.Locale.ROOT), name);
            ConfigurationException.require(compensationTimeout == null || compensations == 1,
                    "saga '%s': step '%s' has a compensationTimeout (%s) but no compensation", saga, name, compensationTimeout);
            // As a compensationTimeout: a policy nothing would apply is a mistake to say, not to ignore.
            ConfigurationException.require(compensationRetry == null || compensations == 1,
                    "saga '%s': step '%s' has a compensationRetry policy but no compensation", saga, name);
            // The driving thread runs a lone step's synchronous compensation to its end (also the only member of a
            // parallel group's): no timeout could apply.
            ConfigurationException.require(compensationTimeout == null || compensation == null || concurrent,
                    "saga '%s': step '%s' has a compensationTimeout (%s) but a synchronous compensation, which runs to "
                    + "its end on the thread that drives the saga (only an asynchronous or remote compensation, or that of "
                    + "a member of a parallel group of two or more, is bounded by a timeout)", saga, name, compensationTimeout);
            // Likewise a timeout: a synchronous action outside a group of two or more runs to its end on the driving
            // thread, and so does a synchronous compensation there; only an asynchronous or remote compensation is
            // left for it to bound, unless a compensationTimeout of its own bounds that.
            ConfigurationException.require(timeout == null || action == null || concurrent
                            || compensationTimeout == null && (asyncCompensation != null || compensationCommand != null),
                    "saga '%s': step '%s' has a timeout (%s) but a synchronous action, which runs to its end on the thread "
                    + "that drives the saga, and no asynchronous or remote compensation for it to bound (a timeout bounds "
                    + "an asynchronous or remote action, a member of a parallel group of two or more, and a compensation "
                    + "the engine does not block on, when it has no compensationTimeout of its own); declare the action "
                    + "with asyncAction(...) to bound it", saga, name, timeout);
            RetryPolicy policy = retry != null ? retry
                    : role == StepRole.RETRIABLE ? RetryPolicy.builder().maxAttempts(Integer.MAX_VALUE).build()
                    : RetryPolicy.NONE;
            SagaStep.Remote<D> remote = command == null ? null : new SagaStep.Remote<>(commandTopic, commandType, command, replyType,
                    onReply);
            SagaStep.RemoteCompensation<D> remoteCompensation = compensationCommand == null ? null
                    : new SagaStep.RemoteCompensation<>(compensationTopic, compensationCommandType, compensationCommand,
                    compensationReplyType,
                    onCompensationReply);
            return new SagaStep<>(name, role, index, group, action, asyncAction, remote, compensation, asyncCompensation,
                    remoteCompensation, policy, compensationRetry != null ? compensationRetry : RetryPolicy.DEFAULT, timeout,
                    compensationTimeout != null ? compensationTimeout : timeout);
        }
    }
}
