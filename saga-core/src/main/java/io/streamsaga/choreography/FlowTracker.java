package io.streamsaga.choreography;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.diagram.internal.MermaidText;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Follows every instance of a choreographed flow by correlation id, from the outside: it subscribes to the
 * flow's topics under its own consumer groups and never takes part in the choreography. It answers where an
 * instance is now ({@link #where}), reports instances whose deadline passed without a terminal event
 * ({@link #onStalled}, checked on the {@link Scheduler} at each instance's deadline, so a virtual clock
 * drives it in tests), counts outcomes, and draws one instance's path as a Mermaid sequence diagram.
 *
 * <p>Metrics: each instance counts as a saga named after the flow ({@link MetricsRecorder#sagaStarted} when
 * first seen, {@link MetricsRecorder#sagaFinished} with outcome {@value #OUTCOME_SUCCEEDED} or
 * {@value #OUTCOME_FAILED} and the time from its first to its terminal event), and a stalled instance grows
 * the {@value #STALLED_COUNTER} counter.
 *
 * <p>A message belongs to the flow when its event type, or else its topic, is one of the declared events, so
 * a flow works both with a topic per event (the source's style) and with several event types on a shared
 * topic ({@link Builder#topics}). Events of one instance arrive on different topics, so the tracker may see them out of order; it
 * sorts steps by message timestamp and creates an instance from whichever event it sees first. The
 * deadline runs from the earliest timestamp seen, but ends no sooner than a deadline after the tracker first saw the
 * instance, so a tracker reading a backlog (started from the earliest position, or back after an outage) gives each
 * instance the time to show its events on the other topics instead of reporting it stalled at once. It does not see
 * what is left unread on its other topics: an instance whose terminal event is read more than a deadline after its
 * first is reported stalled though it may have ended in time, and {@link FlowInstance#missedDeadline()} says the
 * tracker reported the instance stalled, not that its events came late (docs/choreography.md). A duplicate delivery (same message id) is recorded once.
 * Finished instances beyond {@code maxFinishedInstances} are forgotten in the order they finished, so memory stays
 * bounded; running and stalled ones are always kept. The correlation ids of as many forgotten instances are
 * remembered, so an event of one of them redelivered later (at-least-once) starts no new instance that would
 * be reported stalled. The duration reported for an instance runs from the earliest event seen when its
 * terminal event arrives: 0 when the terminal event is the first seen (events on other topics may lag).
 *
 * <p>Thread-safe: the bus may deliver on several threads.
 */
public final class FlowTracker implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(FlowTracker.class);
    /** Name of the {@link MetricsRecorder#increment} counter of stalled instances (tag {@code flow}). */
    public static final String STALLED_COUNTER = "flow_stalled";
    /** Saga outcome reported to {@link MetricsRecorder#sagaFinished} for a terminal success event. */
    public static final String OUTCOME_SUCCEEDED = "completed";
    /** Saga outcome reported for a terminal failure event: the flow ended in its declared failure state. */
    public static final String OUTCOME_FAILED = "compensated";

    private final FlowDefinition flow;
    private final EventBus bus;
    private final Scheduler scheduler;
    /** This tracker's deadline checks on the bus's scheduler: close() cancels those queued, waits for one running. */
    private final Scheduler checks;
    private final MetricsRecorder metrics;
    private final String group;
    private final int maxFinished;
    private final List<String> topics;
    private final Map<String, State> instances = new LinkedHashMap<>();
    /** Correlation ids of forgotten finished instances, oldest first, at most {@code maxFinished}. */
    private final LinkedHashSet<String> forgotten = new LinkedHashSet<>();
    private final List<Consumer<FlowInstance>> stalledListeners = new CopyOnWriteArrayList<>();
    /**
     * Guards {@link #subscriptions}: start and close hold it rather than the tracker's lock, which the
     * subscriptions' handlers take in {@link #observe}; a subscription's close waits for its handler to return.
     */
    private final Object lifecycle = new Object();
    /** Set by close(): no more subscriptions, and deadlines passing afterwards are not reported as stalls. */
    private volatile boolean closed;
    private final List<Subscription> subscriptions = new ArrayList<>();
    /**
     * The finished instances' correlation ids in the order they finished, earliest first: they are forgotten in that
     * order, so the most recently finished stay queryable (an instance first seen long before it finished included),
     * without walking past the running and stalled instances, which are kept. A finished instance stays finished.
     */
    private final java.util.ArrayDeque<String> finishedInOrder = new java.util.ArrayDeque<>();

    private FlowTracker(Builder builder) {
        this.flow = builder.flow;
        this.bus = builder.bus;
        this.scheduler = bus.scheduler();
        this.checks = Scheduler.scoped(scheduler, "flow tracker '" + flow.name() + "'");
        this.metrics = MetricsRecorder.guarded(bus.metrics());
        this.group = builder.group != null ? builder.group : "flow-tracker." + flow.name();
        this.maxFinished = builder.maxFinished;
        this.topics = builder.topics != null ? builder.topics : List.copyOf(flow.events().keySet());
    }

    /** Starts a tracker of {@code flow} over {@code bus}. */
    public static Builder builder(EventBus bus, FlowDefinition flow) {
        return new Builder(bus, flow);
    }

    /** The tracked flow. */
    public FlowDefinition flow() {
        return flow;
    }

    /**
     * Subscribes to the flow's topics (one consumer group per topic, {@code <group>.<topic>}) and returns this
     * tracker. By default each declared event is a topic; see {@link Builder#topics} for shared topics. All or
     * none: a topic the transport cannot subscribe to closes the subscriptions made before it, and the tracker
     * can be started again. Neither this nor {@link #close()} holds the tracker's lock while it subscribes or
     * closes, so a handler of a subscription being closed finishes its message instead of waiting out the close.
     */
    public FlowTracker start(StartPosition start) {
        synchronized (lifecycle) {
            ConfigurationException.require(!closed, "flow tracker '%s' is closed", flow.name());
            ConfigurationException.require(subscriptions.isEmpty(), "flow tracker '%s' is already started", flow.name());
            subscriptions.addAll(Subscription.allOrNone(topics, topic -> bus.subscribe(group + "." + topic.replace('*', '_'),
                    topic, Message.class, SubscriptionOptions.defaults().withStart(start), (message, ctx) -> observe(message))));
        }
        return this;
    }

    /** Starts from the latest position: instances that begin from now on. */
    public FlowTracker start() {
        return start(StartPosition.LATEST);
    }

    /**
     * Calls {@code listener} (on the scheduler's thread) with every instance that misses its deadline. A
     * listener that throws an exception is logged and skipped; the other listeners are still called.
     */
    public void onStalled(Consumer<FlowInstance> listener) {
        stalledListeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Records one message of the flow. The tracker's subscriptions call this; an application may also feed
     * messages it received some other way. Messages of other topics, or without a correlation id, are
     * ignored (returns false), and so is every message once the tracker is {@linkplain #close() closed}: it records,
     * counts and schedules nothing more, as its subscriptions deliver nothing more.
     */
    public boolean observe(Message message) {
        String event = flow.role(message.type()) != null ? message.type()
                : flow.role(message.topic()) != null ? message.topic() : null;
        if (event == null) {
            return false;
        }
        String correlationId = message.correlationId().orElse(null);
        if (correlationId == null) {
            log.warn("flow '{}': {} carries no correlation id and cannot be followed", flow.name(), message);
            return false;
        }
        FlowStep step = new FlowStep(event, message.id(), message.causationId().orElse(null), message.timestamp());
        Instant checkAt = null;
        boolean started = false;
        FlowInstance finished = null;
        synchronized (this) {
            if (closed) {
                // close() said it observes nothing more: no instance, metric or deadline after it. A handler finishing
                // its message while close() waits for it lands here too, and must not fail it (a false alarm at every
                // shutdown, or a dead letter of a sound message in the tracker's group).
                log.debug("flow '{}': tracker closed, {} ignored", flow.name(), message);
                return false;
            }
            State state = instances.get(correlationId);
            if (state == null && forgotten.contains(correlationId)) {
                // a late or redelivered event of an instance that finished and was forgotten: not a new instance
                log.debug("flow '{}': {} belongs to finished instance {}, already forgotten", flow.name(), message, correlationId);
                return true;
            }
            if (state == null) {
                state = new State(correlationId, step.at(), scheduler.clock().instant());
                instances.put(correlationId, state);
                checkAt = state.deadlineAt();
                started = true;
            } else if (step.at().isBefore(state.startedAt)) {
                // an earlier event of the instance arrived late on its topic: the deadline moves earlier
                state.startedAt = step.at();
                checkAt = state.deadlineAt();
            }
            if (!state.add(step)) {
                return true;
            }
            FlowStatus next = flow.statusAfter(step.event());
            if (next.isTerminal() && !state.status.isTerminal()) {
                state.status = next;
                finishedInOrder.addLast(correlationId);
                finished = state.snapshot();
                evictFinished();
            }
        }
        if (started) {
            metrics.sagaStarted(flow.name());
        }
        if (finished != null) {
            // a choreographed flow is a saga: it shows in the saga metrics under the flow's name
            metrics.sagaFinished(flow.name(), finished.status() == FlowStatus.SUCCEEDED ? OUTCOME_SUCCEEDED : OUTCOME_FAILED,
                    Duration.between(finished.startedAt(), finished.lastStep().orElseThrow().at()));
            log.debug("flow '{}' instance {} finished {}: {}", flow.name(), correlationId, finished.status(), finished.path());
        }
        if (checkAt != null) {
            scheduleCheck(correlationId, checkAt);
        }
        return true;
    }

    private void scheduleCheck(String correlationId, Instant at) {
        Duration delay = Duration.between(scheduler.clock().instant(), at);
        checks.schedule(delay.isNegative() ? Duration.ZERO : delay, () -> checkDeadline(correlationId));
    }

    private void checkDeadline(String correlationId) {
        if (closed) {
            return; // it observes nothing any more: an instance in flight is not stalled for that
        }
        FlowInstance stalled;
        synchronized (this) {
            State state = instances.get(correlationId);
            if (state == null || state.status != FlowStatus.RUNNING
                    || scheduler.clock().instant().isBefore(state.deadlineAt())) {
                return;
            }
            state.status = FlowStatus.STALLED;
            state.missedDeadline = true;
            stalled = state.snapshot();
        }
        log.warn("flow '{}' instance {} stalled: no terminal event by {}; last event {}", flow.name(), correlationId,
                stalled.deadlineAt(), stalled.lastStep().map(FlowStep::event).orElse("none"));
        metrics.increment(STALLED_COUNTER, Map.of("flow", flow.name()));
        for (Consumer<FlowInstance> listener : stalledListeners) {
            try {
                listener.accept(stalled);
            } catch (Exception | AssertionError | StackOverflowError e) {
                // a checked one too (a Kotlin listener, a sneaky throw), or a listener's own bug: the other
                // listeners still hear of it
                log.error("stalled-flow listener failed for {}", correlationId, e);
            }
        }
    }

    private void evictFinished() {
        while (finishedInOrder.size() > maxFinished) {
            String correlationId = finishedInOrder.pollFirst();
            instances.remove(correlationId);
            forgotten.add(correlationId);
        }
        Iterator<String> oldest = forgotten.iterator();
        while (forgotten.size() > maxFinished && oldest.hasNext()) {
            oldest.next();
            oldest.remove();
        }
    }

    /** Where the instance with {@code correlationId} is now, if the tracker has seen it. */
    public synchronized Optional<FlowInstance> where(String correlationId) {
        State state = instances.get(correlationId);
        return state == null ? Optional.empty() : Optional.of(state.snapshot());
    }

    /** The instances whose deadline passed without a terminal event. */
    public synchronized List<FlowInstance> stalled() {
        return instances.values().stream().filter(s -> s.status == FlowStatus.STALLED).map(State::snapshot).toList();
    }

    /** How many known instances stand in each status (every status present, zero when none). */
    public synchronized Map<FlowStatus, Long> outcomes() {
        Map<FlowStatus, Long> counts = new EnumMap<>(FlowStatus.class);
        for (FlowStatus status : FlowStatus.values()) {
            counts.put(status, 0L);
        }
        for (State state : instances.values()) {
            counts.merge(state.status, 1L, Long::sum);
        }
        return counts;
    }

    /** A plain-text report: outcome counts, then every stalled instance with its last event. */
    public String report() {
        StringBuilder out = new StringBuilder("flow '").append(flow.name()).append("': ");
        Map<FlowStatus, Long> counts = outcomes();
        out.append(String.join(", ", counts.entrySet().stream()
                .map(e -> e.getKey().name().toLowerCase() + "=" + e.getValue()).toList()));
        for (FlowInstance instance : stalled()) {
            out.append("\n  stalled ").append(instance.correlationId()).append(" since ").append(instance.startedAt())
                    .append(", last event ").append(instance.lastStep().map(FlowStep::event).orElse("none"))
                    .append(", path ").append(instance.path());
        }
        return out.toString();
    }

    /**
     * The path of one instance as a Mermaid sequence diagram: one arrow from the emitting service to each
     * reacting service per event, a note for events nobody reacts to, and a closing note with the status. Each
     * service is a participant labelled with its name, under an id made of the name's ASCII letters, digits and '_'
     * (other characters become '_'), suffixed {@code _2}, {@code _3}... when another service has that id already or
     * it is a Mermaid keyword; line breaks, ';' and '#' in names and in the correlation id become spaces or ','.
     */
    public Optional<String> mermaid(String correlationId) {
        return where(correlationId).map(this::mermaid);
    }

    /** The Mermaid sequence diagram of a snapshot of this flow; see {@link #mermaid(String)}. */
    public String mermaid(FlowInstance instance) {
        Map<String, String> participants = new LinkedHashMap<>(); // service name -> its id in the diagram
        Set<String> ids = new HashSet<>();
        for (FlowDefinition.EventRole role : flow.events().values()) {
            participants.computeIfAbsent(role.emitter(), name -> MermaidText.participantId(name, ids));
            role.reactors().forEach(r -> participants.computeIfAbsent(r, name -> MermaidText.participantId(name, ids)));
        }
        StringBuilder out = new StringBuilder("sequenceDiagram\n");
        participants.forEach((name, id) -> out.append("    participant ").append(id).append(" as ")
                .append(MermaidText.oneLine(name)).append('\n'));
        for (FlowStep step : instance.steps()) {
            FlowDefinition.EventRole role = flow.role(step.event());
            String emitter = participants.get(role.emitter());
            if (role.reactors().isEmpty()) {
                out.append("    Note over ").append(emitter).append(": ").append(step.event()).append('\n');
            }
            for (String reactor : role.reactors()) {
                out.append("    ").append(emitter).append("->>").append(participants.get(reactor)).append(": ")
                        .append(step.event()).append('\n');
            }
        }
        List<String> order = List.copyOf(participants.values());
        out.append("    Note over ").append(order.get(0)).append(',').append(order.get(order.size() - 1)).append(": ")
                .append(MermaidText.oneLine(instance.correlationId())).append(' ').append(instance.status())
                .append(instance.missedDeadline() ? " (missed deadline)" : "").append('\n');
        return out.toString();
    }

    /**
     * Closes the tracker's subscriptions, each waiting for its handler to finish the message in hand; what it knows
     * stays queryable. A closed tracker observes nothing more ({@link #observe} ignores what it is fed and returns
     * false), so a deadline passing afterwards is not reported as a stall (no warning, metric or {@link #onStalled}
     * call), and {@link #start} is refused. Its queued deadline checks
     * are cancelled, and one running on another thread (its stalled listeners) ends before close() returns (it waits
     * up to 10 s; called from a stalled listener, it does not wait for it).
     */
    @Override
    public void close() {
        synchronized (lifecycle) {
            closed = true;
            subscriptions.forEach(Subscription::close);
            subscriptions.clear();
        }
        checks.close(); // outside the lifecycle lock, as a check never takes it
    }

    /** Mutable state of one instance; guarded by the tracker's lock. */
    private final class State {
        final String correlationId;
        /** In causal order unless {@link #unsorted}: see {@link #add}. */
        final List<Placed> steps = new ArrayList<>();
        final Map<String, Placed> byId = new java.util.HashMap<>();
        /** The causation ids the steps name, so that a cause arriving after its effects is known as one. */
        final java.util.Set<String> referencedCauses = new java.util.HashSet<>();
        /**
         * Set when a cause arrived after its effects, changing their keys: the keys are dropped and the steps added
         * since are appended unsorted, until {@link #snapshot} works the keys out and sorts them, once.
         */
        boolean unsorted;
        /** When the tracker saw the instance's first event, on the scheduler's clock. */
        final Instant firstSeenAt;
        Instant startedAt;
        FlowStatus status = FlowStatus.RUNNING;
        boolean missedDeadline;

        State(String correlationId, Instant startedAt, Instant firstSeenAt) {
            this.correlationId = correlationId;
            this.startedAt = startedAt;
            this.firstSeenAt = firstSeenAt;
        }

        /**
         * The deadline from the earliest event, but not before a deadline has passed since the tracker first saw the
         * instance: a tracker reading a backlog (started from the earliest position, back after an outage) sees an
         * instance's events on its topics one after another, and would otherwise report a flow stalled that had
         * ended well within its deadline, its terminal event still unread on another topic.
         */
        Instant deadlineAt() {
            Instant fromStart = startedAt.plus(flow.deadline());
            Instant fromFirstSeen = firstSeenAt.plus(flow.deadline());
            return fromStart.isBefore(fromFirstSeen) ? fromFirstSeen : fromStart;
        }

        /**
         * Adds a step, unless one with its message id is there already. An event always sorts after the event that
         * caused it: timestamps can tie (coarse or virtual clocks) or even run backwards (wall clocks of other
         * services, clock adjustments), so a step sorts by the latest timestamp along its causation chain, then by
         * its depth in that chain, then by arrival. Those keys are kept per step: a step that caused none of those
         * seen takes its keys from its cause and goes into place, so a long flow costs each event a look-up, not a
         * walk of every chain at every comparison of a sort (cubic in its length). A cause arriving after its effects
         * changes the keys of the steps below it: the steps are then left unsorted until read, so that causes
         * arriving last first (their topic lagging behind their effects') cost one sort, not one each (quadratic).
         */
        boolean add(FlowStep step) {
            Placed placed = new Placed(step, byId.size());
            if (byId.putIfAbsent(step.messageId(), placed) != null) {
                return false;
            }
            if (!unsorted && referencedCauses.contains(step.messageId())) {
                unsorted = true;
                steps.forEach(seen -> seen.key = null);
            }
            if (step.causationId() != null) {
                referencedCauses.add(step.causationId());
            }
            if (unsorted) {
                steps.add(placed);
                return true;
            }
            Key key = keyOf(placed);
            int at = steps.size();
            while (at > 0 && steps.get(at - 1).key.compareTo(key) > 0) {
                at--; // after every step whose key is not greater: the place of the latest arrival among equal keys
            }
            steps.add(at, placed);
            return true;
        }

        /**
         * The sort key of {@code step}, worked out from its cause's (walking up to the first step with a key, the
         * chain's start, or a step met twice: causation ids from outside may form a cycle) and kept.
         */
        private Key keyOf(Placed step) {
            if (step.key != null) {
                return step.key;
            }
            Placed cause = step.step.causationId() == null ? null : byId.get(step.step.causationId());
            if (cause == null || cause.key != null) { // the usual case: the chain's start, or its cause placed already
                step.key = step.after(cause == null ? null : cause.key);
                return step.key;
            }
            java.util.ArrayDeque<Placed> unkeyed = new java.util.ArrayDeque<>();
            java.util.Set<Placed> onPath = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            Placed cursor = step;
            Key key = null;
            while (cursor != null && onPath.add(cursor)) {
                key = cursor.key;
                if (key != null) {
                    break;
                }
                unkeyed.push(cursor);
                cursor = cursor.step.causationId() == null ? null : byId.get(cursor.step.causationId());
            }
            while (!unkeyed.isEmpty()) {
                Placed next = unkeyed.pop();
                next.key = next.after(key);
                key = next.key;
            }
            return key;
        }

        FlowInstance snapshot() {
            if (unsorted) {
                steps.forEach(this::keyOf);
                steps.sort(Placed.ORDER);
                unsorted = false;
            }
            FlowStep[] inOrder = new FlowStep[steps.size()];
            for (int i = 0; i < inOrder.length; i++) {
                inOrder[i] = steps.get(i).step;
            }
            return new FlowInstance(flow.name(), correlationId, status, Arrays.asList(inOrder), startedAt, deadlineAt(),
                    missedDeadline);
        }
    }

    /** A step of an instance and where it sorts; guarded by the tracker's lock. */
    private static final class Placed {
        /** By key, then arrival. */
        static final Comparator<Placed> ORDER = Comparator.comparing((Placed p) -> p.key).thenComparingInt(p -> p.arrival);
        final FlowStep step;
        /** Its number in the order the instance's steps arrived. */
        final int arrival;
        /** Where it sorts; null until worked out, and while the instance's steps are unsorted. */
        Key key;

        Placed(FlowStep step, int arrival) {
            this.step = step;
            this.arrival = arrival;
        }

        /** Its key as the effect of a step keyed {@code cause}, or as a chain's start when that is null. */
        Key after(Key cause) {
            return cause == null ? new Key(step.at(), 0)
                    : new Key(step.at().isAfter(cause.notBefore()) ? step.at() : cause.notBefore(), cause.depth() + 1);
        }
    }

    /**
     * Where a step sorts: after the latest timestamp along its causation chain, then by its depth in the chain.
     *
     * @param notBefore the latest timestamp of the step and the known events that (transitively) caused it
     * @param depth     how many known events caused it, one after another
     */
    private record Key(Instant notBefore, int depth) implements Comparable<Key> {
        @Override
        public int compareTo(Key other) {
            int byTime = notBefore.compareTo(other.notBefore);
            return byTime != 0 ? byTime : Integer.compare(depth, other.depth);
        }
    }

    /** Builds a {@link FlowTracker}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final FlowDefinition flow;
        private String group;
        private int maxFinished = 10_000;
        private List<String> topics;

        private Builder(EventBus bus, FlowDefinition flow) {
            this.bus = Objects.requireNonNull(bus, "bus");
            this.flow = Objects.requireNonNull(flow, "flow");
        }

        /** Prefix of the tracker's consumer groups; default {@code flow-tracker.<flow name>}. */
        public Builder group(String prefix) {
            ConfigurationException.require(prefix != null && !prefix.isBlank(), "group must not be blank, but was '%s'", prefix);
            this.group = prefix;
            return this;
        }

        /**
         * How many finished instances stay queryable, and how many correlation ids of forgotten ones are
         * remembered; default 10,000. At least 1: with none, a finished instance would be forgotten at once, and
         * an event of it redelivered (at-least-once) would start a phantom instance reported stalled.
         */
        public Builder maxFinishedInstances(int max) {
            ConfigurationException.require(max >= 1, "maxFinishedInstances must be 1 or more, but was %s: a tracker that"
                    + " remembers no finished instance takes a redelivered event of one for a new instance, reported stalled", max);
            this.maxFinished = max;
            return this;
        }

        /**
         * The topics or wildcard patterns to follow, when the flow's events share topics (for example
         * {@code orders} carrying {@code order-created} and {@code order-cancelled}); default: one topic per
         * declared event, named as the event. A wildcard that matches no topic ({@code *.DLT}: see
         * {@link TopicPattern#matchesSomeTopic}) is refused with a {@link ConfigurationException} naming it.
         */
        public Builder topics(String... topicsOrPatterns) {
            ConfigurationException.require(topicsOrPatterns.length > 0, "topics must not be empty");
            for (String topic : topicsOrPatterns) {
                // refused here, naming the flow, rather than by the bus at start()
                TopicPattern.of(topic).requireMatchesSomeTopic("flow tracker '" + flow.name() + "' cannot follow");
            }
            this.topics = List.of(topicsOrPatterns);
            return this;
        }

        public FlowTracker build() {
            return new FlowTracker(this);
        }
    }
}
