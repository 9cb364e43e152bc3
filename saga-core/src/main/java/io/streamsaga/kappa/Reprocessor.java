package io.streamsaga.kappa;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Queue;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;

/**
 * Kappa reprocessing: replays topics from the beginning of the log under consumer groups that have never
 * read them, so that new code (a fixed projection, a new read model) sees every event again, as the
 * source's {@code consumer({ groupId: 'reprocess' }) ... fromBeginning: true}. The end offsets are taken
 * when the replay starts; {@link Replay#progress()} compares the groups' committed positions to them and
 * {@link Replay#caughtUp()} completes when they are reached. Handling a record costs the replay only local
 * bookkeeping: it asks the transport for the committed offsets when a record it handled takes a partition to
 * its target, at each {@link Replay#progress()} call, and, until caught up, every 100 ms in which it passed no
 * record (which notices a target reached by another member of the group, or past a transaction's commit marker
 * no handler is given), never once per record. The replay then either goes on following the
 * topics live ({@link Mode#FOLLOW}, for a projection that takes over) or stops and ignores anything
 * published after the start ({@link Mode#UNTIL_TARGET}, for a batch recompute that covers an exact log
 * position). A record whose handler keeps failing (or that cannot be decoded) is dead-lettered by the bus as
 * usual and counts as replayed as soon as its dead letter is sent.
 *
 * <p>Each topic is read by its own group, {@code <group>.<topic>}. Works on any transport through the
 * {@link Transport} contract (end offsets, committed offsets, consumer groups). A configured reprocessor is
 * immutable and thread-safe; the builder is not.
 */
public final class Reprocessor {
    private static final Logger log = LoggerFactory.getLogger(Reprocessor.class);

    /**
     * How often a {@link Replay#caughtUpToNow()} still pending reads the groups' committed offsets, and a replay not
     * caught up yet does when it passed no record since the last time: a partition whose last records this process
     * never hands to a handler (another member of the group handles them, Kafka's transaction markers or aborted
     * records lie before the end, retention deleted them unread) only shows as passed there.
     */
    static final Duration CAUGHT_UP_TO_NOW_RECHECK = Duration.ofMillis(100);

    /** What a replay does once it reached the end offsets taken at its start. */
    public enum Mode {
        /** Goes on handling new events as they come. */
        FOLLOW,
        /** Handles only events below the start's end offsets, then closes its subscriptions. */
        UNTIL_TARGET
    }

    private final EventBus bus;
    private final Mode mode;
    private final List<Binding<?>> bindings;

    private Reprocessor(Builder builder) {
        this.bus = builder.bus;
        this.mode = builder.mode;
        this.bindings = List.copyOf(builder.bindings);
    }

    /** Starts a reprocessor over {@code bus}. */
    public static Builder builder(EventBus bus) {
        return new Builder(bus);
    }

    /** The consumer group a replay under {@code group} uses for {@code topic}. */
    public static String groupFor(String group, String topic) {
        return group + "." + topic;
    }

    /**
     * Whether no group of a replay under {@code group} has ever read any of the given topics: none is among the
     * topic's {@linkplain Transport#consumerGroups consumer groups}, nor has committed offsets on it. The
     * offsets are asked for too because the list of groups may be of some age (on Kafka up to
     * {@code consumerGroupsMaxAge}), and would miss a replay another instance has just started.
     */
    public static boolean isUnused(Transport transport, String group, Iterable<String> topics) {
        for (String topic : topics) {
            if (hasRead(transport, groupFor(group, topic), topic)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether the consumer group {@code consumerGroup} itself has read {@code topic} (is among its consumer groups, or has
     * committed offsets on it, as {@link #isUnused} asks of each replay group), for a consumer that must start from the
     * beginning under a group that never read the topic (a serving layer's real-time side after a restart).
     */
    public static boolean hasRead(Transport transport, String consumerGroup, String topic) {
        return transport.consumerGroups(topic).contains(consumerGroup)
                || !transport.committedOffsets(consumerGroup, topic).isEmpty();
    }

    /** The topics this reprocessor reads. */
    public List<String> topics() {
        return bindings.stream().map(Binding::topic).distinct().toList();
    }

    /**
     * Starts replaying under {@code group}, which must be new for every topic (a used group would resume
     * from its committed position instead of the beginning). A start that fails (a topic the transport cannot
     * subscribe to) closes the subscriptions it made before it throws.
     *
     * @throws ConfigurationException when a group already read one of the topics, or a topic's class is one the bus's
     *         codec cannot decode to ({@link io.streamsaga.codec.EventCodec#canDecodeTo}: a class left out of the
     *         registry), before anything is subscribed
     */
    public Replay start(String group) {
        ConfigurationException.require(group != null && !group.isBlank(), "replay group must not be blank, but was '%s'", group);
        // Every binding's class is checked before anything is subscribed: the bus would refuse a later one only after
        // the earlier ones had subscribed under their groups, which the transport may then list as having read the topic.
        for (Binding<?> binding : bindings) {
            if (!bus.codec().canDecodeTo(binding.type())) {
                throw new ConfigurationException("replay group '" + group + "' cannot handle '" + binding.topic()
                        + "' as a class the bus's codec cannot decode to, every message would be dead-lettered: "
                        + EventCodec.whyCannotDecodeTo(bus.codec(), binding.type()));
            }
        }
        Transport transport = bus.transport();
        for (String topic : topics()) {
            ConfigurationException.require(!hasRead(transport, groupFor(group, topic), topic),
                    "consumer group '%s' already read topic '%s'; a replay needs a new group", groupFor(group, topic), topic);
        }
        // The target is taken before subscribing, so nothing written before the start can be missed.
        Run run = new Run(group, endOffsetsNow(topics()));
        // No Replay handle reaches the caller of a failed start: what was subscribed is closed again.
        List<Subscription> subscriptions = Subscription.allOrNone(bindings, run::subscribe);
        // Asking for progress also checks for completion: it may show a target reached by other means (a
        // member of the same group elsewhere committing), which no handler of this process saw.
        run.replay = new Replay(group, run.groups, () -> {
            run.checkCaughtUp();
            return run.progress();
        }, run.caughtUp, run::caughtUpToNow, run::caughtUpTo, run::close, subscriptions);
        run.checkCaughtUp(); // an empty log, or a target already reached
        run.armRecheck(); // unless caught up: a target only the committed offsets show reached (transaction markers)
        return run.replay;
    }

    /** The end offsets of {@code topics} now, by topic: one read of the transport per topic. */
    private Map<String, Map<Integer, Long>> endOffsetsNow(Collection<String> topics) {
        Map<String, Map<Integer, Long>> ends = new TreeMap<>();
        for (String topic : topics) {
            ends.put(topic, Map.copyOf(bus.transport().endOffsets(topic)));
        }
        return ends;
    }

    /** The state of one replay: its target, what its handlers finished, and its completion. */
    private final class Run {
        final String group;
        final Map<String, Map<Integer, Long>> target;
        final Map<String, Map<Integer, Long>> handled = new ConcurrentHashMap<>();
        final Map<String, String> groups = new LinkedHashMap<>();
        final CompletableFuture<ReplayProgress> caughtUp = new CompletableFuture<>();
        /** The pending {@link #caughtUpToNow()} stages; empty unless one is asked for, so a record pays one read. */
        final Queue<Waiter> waiters = new ConcurrentLinkedQueue<>();
        volatile Replay replay;
        volatile boolean closed;
        /**
         * The recheck's scheduler: the bus's, scoped to this replay, so that {@link #close()} waits for a run in
         * progress (cancelling a repeating task does not stop one its scheduler's thread already started).
         */
        final Scheduler timers;
        private Scheduler.Cancellable recheck; // guarded by this: reads committed offsets while recheckWanted()
        private long positionAtLastRecheck = -1; // the sum of the handled positions; only the recheck reads and writes it

        Run(String group, Map<String, Map<Integer, Long>> target) {
            this.group = group;
            this.target = target;
            this.timers = Scheduler.scoped(bus.scheduler(), "replay '" + group + "'");
        }

        <E> Subscription subscribe(Binding<E> binding) {
            String topicGroup = groupFor(group, binding.topic());
            groups.put(binding.topic(), topicGroup);
            Map<Integer, Long> topicTarget = target.get(binding.topic());
            EventHandler<E> handler = (event, ctx) -> {
                boolean beyond = ctx.offset() >= topicTarget.getOrDefault(ctx.partition(), 0L);
                if (!(mode == Mode.UNTIL_TARGET && beyond)) {
                    binding.handler().handle(event, ctx);
                }
                passed(binding.topic(), ctx);
            };
            // A dead-lettered record is replayed too: without this the replay would only notice it at the next
            // record, and none may come when it was the last one before the target.
            SubscriptionOptions options = SubscriptionOptions.fromEarliest()
                    .withDeadLetterListener((ctx, reason) -> passed(binding.topic(), ctx));
            return bus.subscribe(topicGroup, binding.topic(), binding.type(), options, handler);
        }

        /**
         * The record at {@code ctx} was handled or dead-lettered. Local work only, but when the record takes its
         * partition to its target: then completion is checked, which asks the transport for the committed
         * offsets (on Kafka an Admin request), so a replay makes at most one such request per partition rather
         * than one per record.
         */
        private void passed(String topic, DeliveryContext ctx) {
            long partitionTarget = target.get(topic).getOrDefault(ctx.partition(), 0L);
            long[] moved = new long[2]; // the partition's position before (-1: none yet) and after this record
            handled.computeIfAbsent(topic, t -> new ConcurrentHashMap<>()).compute(ctx.partition(), (p, before) -> {
                long now = before == null ? ctx.offset() + 1 : Math.max(before, ctx.offset() + 1);
                moved[0] = before == null ? -1 : before;
                moved[1] = now;
                return now;
            });
            if (moved[1] >= partitionTarget && moved[0] < partitionTarget) {
                checkCaughtUp();
            }
            if (!waiters.isEmpty()) {
                // a waiter is checked only when this record took the partition to its target, as caughtUp is
                for (Waiter waiter : waiters) {
                    long waited = waiter.target.getOrDefault(topic, Map.of()).getOrDefault(ctx.partition(), 0L);
                    if (moved[1] >= waited && moved[0] < waited) {
                        waiter.check(null);
                    }
                }
            }
        }

        /**
         * Backs {@link Replay#caughtUpToNow()}: the end offsets now are the waiter's target. Checked at once against what
         * the handlers passed, then whenever a passed record takes a partition to its target, and every
         * {@link #CAUGHT_UP_TO_NOW_RECHECK} against the committed offsets too while any waiter is pending.
         */
        CompletionStage<ReplayProgress> caughtUpToNow() {
            requireFollowing();
            if (closed) { // before asking the transport anything
                return CompletableFuture.failedStage(new CancellationException("replay '" + group + "' is closed"));
            }
            return waitFor(endOffsetsNow(target.keySet()));
        }

        /** Backs {@link Replay#caughtUpTo}: {@code positions} checked, then waited for as {@link #caughtUpToNow()}'s. */
        CompletionStage<ReplayProgress> caughtUpTo(Map<String, Map<Integer, Long>> positions) {
            requireFollowing();
            ConfigurationException.require(positions != null, "replay '%s': the positions to wait for must not be null", group);
            Map<String, Map<Integer, Long>> copy = new TreeMap<>();
            positions.forEach((topic, offsets) -> {
                ConfigurationException.require(topic != null && target.containsKey(topic), "replay '%s' does not read topic '%s' (it reads "
                        + "%s): its positions there would never be reached", group, topic, target.keySet());
                ConfigurationException.require(offsets != null, "replay '%s': the positions on topic '%s' must not be "
                        + "null", group, topic);
                offsets.forEach((partition, offset) -> ConfigurationException.require(partition != null && partition >= 0
                        && offset != null && offset >= 0, "replay '%s': a position must be a partition and an offset of "
                        + "zero or more, but was %s=%s on topic '%s'", group, partition, offset, topic));
                copy.put(topic, Map.copyOf(offsets));
            });
            if (closed) {
                return CompletableFuture.failedStage(new CancellationException("replay '" + group + "' is closed"));
            }
            return waitFor(copy);
        }

        private void requireFollowing() {
            ConfigurationException.require(mode == Mode.FOLLOW, "replay '%s' runs until the end offsets taken at its "
                    + "start (Mode.UNTIL_TARGET) and never applies what was published after: wait for caughtUp()", group);
        }

        /** A pending stage for {@code positions}: checked at once, then as records pass and on the recheck. */
        private CompletionStage<ReplayProgress> waitFor(Map<String, Map<Integer, Long>> positions) {
            Waiter waiter = new Waiter(positions);
            waiters.add(waiter); // before the first check: a record passed meanwhile is then seen by one or the other
            waiter.done.whenComplete((progress, error) -> {
                waiters.remove(waiter);
                disarmRecheckWhenIdle();
            });
            if (closed) { // close() ran since the check above and may have missed this waiter
                waiter.cancel();
            }
            waiter.check(null);
            if (!waiter.done.isDone()) {
                armRecheck();
            }
            return waiter.done.minimalCompletionStage();
        }

        /** Whether the recheck has work: a {@link #caughtUpToNow()} pending, or {@link #caughtUp} not reached yet. */
        private boolean recheckWanted() {
            return !waiters.isEmpty() || !caughtUp.isDone();
        }

        /** Arms the recheck when it has work and is not armed; a waiter is added, or the run started, before. */
        synchronized void armRecheck() {
            if (recheck != null || closed || !recheckWanted()) {
                return;
            }
            try {
                recheck = Scheduler.repeat(timers, "replay '" + group + "': its check of committed offsets for "
                        + "caughtUpToNow", CAUGHT_UP_TO_NOW_RECHECK, CAUGHT_UP_TO_NOW_RECHECK, this::recheckWaiters);
            } catch (RejectedExecutionException e) { // the bus's scheduler is closed: handled records still complete
                log.debug("replay '{}' cannot check committed offsets for caughtUpToNow: {}", group, e.toString());
            }
        }

        /** Cancels the recheck once it has no work; a waiter added since arms it again (it is added before it arms). */
        private synchronized void disarmRecheckWhenIdle() {
            if (recheck != null && !recheckWanted()) {
                recheck.cancel();
                recheck = null;
            }
        }

        /**
         * One run of the recheck: reads the committed offsets for the pending waiters, and for {@link #caughtUp} when
         * no record was passed since the last run (a replay still moving checks it when a record reaches a target, so
         * a long replay makes no request every run, but one that stopped short of its target, before a transaction's
         * commit marker or with partitions another member handles, is seen caught up); stops when there is no work.
         */
        private boolean recheckWaiters() {
            if (!recheckWanted() || closed) {
                disarmRecheckWhenIdle();
                return false;
            }
            long position = 0;
            for (Map<Integer, Long> positions : handled.values()) {
                for (long p : positions.values()) {
                    position += p;
                }
            }
            boolean quiet = position == positionAtLastRecheck;
            positionAtLastRecheck = position;
            // one read of the committed offsets serves both checks
            Map<String, Map<Integer, Long>> committed = quiet && !caughtUp.isDone() ? checkCaughtUp(null) : null;
            if (waiters.isEmpty()) {
                return false;
            }
            if (committed == null) {
                committed = committedOffsets();
            }
            for (Waiter waiter : waiters) {
                waiter.check(committed);
            }
            return false;
        }

        /**
         * Fails every pending {@link #caughtUpToNow()} and stops the recheck, waiting for a run of it in progress on
         * another thread (up to the scheduler's {@link Scheduler#closeWait()}), so that no committed offsets are read
         * once {@link Replay#close()} has returned; called by it.
         */
        void close() {
            closed = true;
            for (Waiter waiter : waiters) {
                waiter.cancel();
            }
            synchronized (this) {
                if (recheck != null) {
                    recheck.cancel();
                    recheck = null;
                }
            }
            // Outside the lock: the run it waits for may be waiting for the lock (disarmRecheckWhenIdle). A run that
            // closes the replay itself (a Mode.UNTIL_TARGET replay caught up by the recheck) is not waited for.
            timers.close();
        }

        /** What the handlers passed per topic and partition, merged with {@code committed} when given. */
        private Map<String, Map<Integer, Long>> reached(Map<String, Map<Integer, Long>> committed) {
            Map<String, Map<Integer, Long>> reached = new TreeMap<>();
            for (String topic : target.keySet()) {
                Map<Integer, Long> positions = new TreeMap<>(committed == null ? Map.of() : committed.getOrDefault(topic, Map.of()));
                handled.getOrDefault(topic, Map.of()).forEach((p, o) -> positions.merge(p, o, Math::max));
                reached.put(topic, positions);
            }
            return reached;
        }

        /** One pending {@link #caughtUpToNow()}: the end offsets at the call, and the stage to complete. */
        private final class Waiter {
            final Map<String, Map<Integer, Long>> target;
            final CompletableFuture<ReplayProgress> done = new CompletableFuture<>();

            Waiter(Map<String, Map<Integer, Long>> target) {
                this.target = target;
            }

            /** Completes the stage when every partition reached its target, by the handlers or {@code committed}. */
            void check(Map<String, Map<Integer, Long>> committed) {
                if (done.isDone()) {
                    return;
                }
                ReplayProgress progress = new ReplayProgress(target, reached(committed));
                if (progress.isComplete()) {
                    done.complete(progress);
                }
            }

            void cancel() {
                done.completeExceptionally(new CancellationException("replay '" + group
                        + "' was closed before it applied every record published before caughtUpToNow() was called"));
            }
        }

        void checkCaughtUp() {
            checkCaughtUp(null);
        }

        /**
         * Completes {@link #caughtUp} when the target is reached, by the handlers or {@code committed} (null: the
         * committed offsets read now); returns the committed offsets it used, or null when it read none.
         */
        private Map<String, Map<Integer, Long>> checkCaughtUp(Map<String, Map<Integer, Long>> committed) {
            if (caughtUp.isDone() || replay == null || closed) {
                return null; // replay is null only while the subscriptions are being made; start() checks again
            }
            Map<String, Map<Integer, Long>> read = committed != null ? committed : committedOffsets();
            ReplayProgress progress = new ReplayProgress(target, reached(read));
            if (progress.isComplete() && caughtUp.complete(progress)) {
                log.info("replay '{}' caught up: {}", group, progress);
                disarmRecheckWhenIdle();
                if (mode == Mode.UNTIL_TARGET) {
                    replay.close();
                }
            }
            return read;
        }

        ReplayProgress progress() {
            // the committed offset trails the record being handled; what the handler finished counts too
            return new ReplayProgress(target, reached(committedOffsets()));
        }

        /** Each topic's consumer group's committed offsets, by topic: one read of the transport per topic. */
        private Map<String, Map<Integer, Long>> committedOffsets() {
            Map<String, Map<Integer, Long>> committed = new TreeMap<>();
            groups.forEach((topic, topicGroup) -> committed.put(topic, bus.transport().committedOffsets(topicGroup, topic)));
            return committed;
        }
    }

    /**
     * One topic and the handler its events are replayed into.
     *
     * @param topic   a concrete topic (no wildcard: its end offsets must be known)
     * @param type    the event class, {@code JsonNode} or {@code Message}
     * @param handler the handler
     * @param <E>     the event type
     */
    public record Binding<E>(String topic, Class<E> type, EventHandler<E> handler) {
        public Binding {
            TopicPattern.requireTopicName(topic);
            Objects.requireNonNull(type, "type");
            Objects.requireNonNull(handler, "handler");
        }
    }

    /** Builds a {@link Reprocessor}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final List<Binding<?>> bindings = new ArrayList<>();
        private Mode mode = Mode.FOLLOW;

        private Builder(EventBus bus) {
            this.bus = Objects.requireNonNull(bus, "bus");
        }

        /** Replays {@code topic} into {@code handler}. One handler per topic. */
        public <E> Builder on(String topic, Class<E> type, EventHandler<E> handler) {
            ConfigurationException.require(bindings.stream().noneMatch(b -> b.topic().equals(topic)),
                    "topic '%s' has a replay handler already", topic);
            bindings.add(new Binding<>(topic, type, handler));
            return this;
        }

        /** What to do once caught up; default {@link Mode#FOLLOW}. */
        public Builder mode(Mode value) {
            this.mode = Objects.requireNonNull(value, "mode");
            return this;
        }

        public Reprocessor build() {
            ConfigurationException.require(!bindings.isEmpty(), "a reprocessor needs at least one topic");
            return new Reprocessor(this);
        }
    }
}
