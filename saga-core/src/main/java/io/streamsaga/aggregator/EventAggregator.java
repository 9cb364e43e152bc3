package io.streamsaga.aggregator;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.message.DerivedIds;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.splitter.SequenceInfo;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Combines correlated parts into one outcome — the source's {@code OrderAggregator}, without its
 * in-memory {@code Map} that forgets everything on restart and never gives up on a missing part.
 *
 * <ul>
 *   <li>Parts are correlated by a key (default: the splitter's {@code sequence-id}, else the
 *       {@code correlation-id}).</li>
 *   <li>A group completes when any configured rule holds: a predicate over the group, a size, or the
 *       splitter's last-part marker with all numbered parts present (which works when only the last part
 *       knew the size). The {@link GroupReleaser} then runs. A part of a sequence numbered beyond the size
 *       the group's parts of that sequence carry, carrying another size, or carrying the number of another part
 *       (under another message id) is refused (not retriable: the bus dead-letters it), and so is a part whose
 *       own sequence headers describe no part of a sequence (a size below its number, say). Parts that arrived
 *       before any part carried the size and are numbered beyond it are dead-lettered by the aggregator when the
 *       size arrives, so they are never released with the group either.</li>
 *   <li>A group may have a timeout, run on the bus's {@link Scheduler}; the {@link TimeoutPolicy} decides
 *       whether the partial group is released or its parts are dead-lettered. A part's dead letter names its message
 *       id ({@link MessageHeaders#DLT_ORIGINAL_MESSAGE_ID}); one the transport refuses as too large
 *       ({@link MessageTooLargeException}) is sent again at once without the payload, then without the part's headers
 *       too, then without its key too, then (a type over 256 characters) without its type too, each omission marked
 *       by a header, rather than fail the outcome.</li>
 *   <li>A closed group is kept as a tombstone for {@code keepClosed}; a part that arrives for it is a late
 *       part and is dead-lettered, never the start of a new group. A part arriving while the group's outcome
 *       runs ({@link GroupState#RELEASING}, {@link GroupState#TIMING_OUT}) is refused with a retriable
 *       {@link AggregationException}: should the outcome fail and reopen the group, the bus's retry adds it.</li>
 *   <li>Every change is a versioned save in the {@link AggregationStore}; a lost race is re-read and
 *       re-applied, so several instances can share a store without losing parts. A part added to a group is
 *       {@link AggregationStore#append appended}: the store writes that part, not the whole group again, so a
 *       group of n parts costs n part writes, not O(n²). Building an aggregator
 *       re-arms the deadlines stored under its name, so timeouts survive a restart; a deadline stored while the
 *       aggregator had a timeout is honoured (with the current {@link TimeoutPolicy}) even if it no longer has one.</li>
 *   <li>Outcomes survive a crash: a completed group is saved as {@link GroupState#RELEASING} before its
 *       releaser runs and as {@link GroupState#COMPLETED} once it returned (and its publishes went through), and a timeout is saved as
 *       {@link GroupState#TIMING_OUT} before its release or
 *       dead letters run, with a lease of {@link Builder#releaseLease} (as a release) during which no other instance
 *       touches it, and is
 *       finished once that lease passed (by a re-armed aggregator after a crash). A release holds its group the
 *       same way, for {@link Builder#releaseLease} (default 5 minutes): meanwhile the part that completed the group
 *       arriving again (a redelivery, the bus's retry) is taken without a release, the instance that took it
 *       checking the group when the lease ends, and no scheduled retry runs, so the group is released once when
 *       nothing crashed; once the lease passed
 *       with the release not recorded (its releaser died; an instance still running it only logs a warning), that
 *       part's redelivery or the group's deadline claims the group (a versioned save: of several instances one wins) and releases it again (reopening it, as a
 *       first release does, should the releaser throw), while a part of a COMPLETED group arriving again is only
 *       a duplicate.</li>
 *   <li>A releaser that throws reopens the group with all its parts, so the retried part completes it again; so
 *       does a publish the releaser made on its thread that failed, awaited or not (a class the registry lacks, the
 *       transport's refusal, a closed bus): the group is recorded released only once those publishes went through,
 *       on a consumer thread and on a timer alike (in Kafka's exactly-once mode, where the release's publishes are
 *       in the delivery's transaction, the group is recorded when the release returns and reopened if that
 *       transaction is withdrawn: docs/patterns.md), so that a part redelivered after such a failure releases the
 *       group again rather than being taken for a duplicate of a released group;
 *       should that part never come back, the release is retried on the {@link Scheduler}: at the group's
 *       deadline, then every timeout, until it succeeds or {@code keepClosed} passed since the part that completed
 *       the group arrived: a retry then that fails too dead-letters the group's parts with the release's error
 *       ({@code dlt-reason=aggregation-release-failed}, the group recorded {@link GroupState#TIMED_OUT_DEAD_LETTERED})
 *       rather than retry a poison group for ever. Without a timeout it is retried until it succeeds (after as
 *       long as the group had been open, at least 1 s, at most {@code keepClosed}). A group whose completion rule
 *       holds is released whole at its deadline, never closed by the {@link TimeoutPolicy} (only its release
 *       failed); only an incomplete group times out. A group still {@link GroupState#RELEASING} once the lease of its
 *       release passed (its instance died, no part of it in flight) is released again then.</li>
 *   <li>A release whose part's delivery the transport withdraws with what the releaser published
 *       ({@link io.streamsaga.spi.Transport#afterDelivery}: on Kafka in exactly-once mode, a batch's transaction that
 *       aborted) reopens the group with all its parts, as a releaser that threw does, so the part, delivered again,
 *       releases it again.</li>
 *   <li>A redelivered part (same message id) is not added twice.</li>
 * </ul>
 * Thread-safe.
 */
public final class EventAggregator implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EventAggregator.class);
    /** Counter of closed groups, tagged by aggregator and outcome. */
    public static final String GROUPS_METRIC = "streamsaga_aggregator_groups_total";
    private static final int MAX_CONFLICTS = 50;
    /**
     * The longest type of a part its dead letter keeps at every step, as the bus's own dead letters do: a longer one
     * (a part of any type, as the aggregator reads its topics as {@link Message}) may be why the dead letter is too
     * large even without the part's key, and is left out at a last step. Registered types are short.
     */
    private static final int MAX_KEPT_TYPE_LENGTH = 256;

    private final Config config;
    private final EventBus bus;
    private final Scheduler scheduler;
    /** This aggregator's timers on the bus's scheduler: close() cancels those queued and waits for the one running. */
    private final Scheduler timerScope;
    private final Map<String, Scheduler.Cancellable> timers = new ConcurrentHashMap<>();
    /**
     * Held by subscribe and close, so a close() waits for the subscriptions being made and closes them; the
     * subscriptions' handlers never take it.
     */
    private final Object lifecycle = new Object();
    private final List<Subscription> subscriptions = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final SequenceIndexes sequences;
    /**
     * The groups whose outcome (a release, a timeout's partial release or dead letters) runs on this instance, with
     * how many runs: past its lease such an outcome is slow, not dead, and this instance does not take it over.
     */
    private final Map<String, Integer> outcomesRunning = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** The completion rules but {@link Builder#completeOnSequenceEnd()}, which the sequence index answers. */
    private final Predicate<AggregationGroup> otherRules;
    private final boolean completeOnSequenceEnd;

    private EventAggregator(EventBus bus, Config config, Predicate<AggregationGroup> otherRules,
                            boolean completeOnSequenceEnd) {
        this.bus = bus;
        this.config = config;
        this.scheduler = bus.scheduler();
        this.timerScope = Scheduler.scoped(scheduler, "aggregator '" + config.name() + "'");
        this.otherRules = otherRules;
        this.completeOnSequenceEnd = completeOnSequenceEnd;
        this.sequences = new SequenceIndexes(config.name(), config.sequenceIndexCapacity());
    }

    /** Starts an aggregator over {@code bus} and {@code store}. */
    public static Builder builder(EventBus bus, AggregationStore store) {
        return new Builder(bus, store);
    }

    /** This aggregator's configuration, as its builder made it. */
    public Config config() {
        return config;
    }

    /** Subscribes {@code group} to each topic pattern, feeding every message into this aggregator. */
    public List<Subscription> subscribe(String group, String... topicPatterns) {
        return subscribe(group, SubscriptionOptions.defaults(), topicPatterns);
    }

    /**
     * Subscribes {@code group} to each topic pattern with {@code options} (start position, retry policy): all or
     * none (a pattern refused after others were subscribed closes those again). Refused once the aggregator is
     * closed, whose {@link #close()} would not stop such a subscription. The aggregator keeps the subscriptions to
     * close them; one found no longer active (closed by the application, or stopped on its own, as a fenced Kafka
     * member does) is closed here and dropped. A {@link #close()} meanwhile waits for this call and closes what it
     * made.
     */
    public List<Subscription> subscribe(String group, SubscriptionOptions options, String... topicPatterns) {
        ConfigurationException.require(topicPatterns.length > 0, "aggregator '%s' needs at least one topic", config.name());
        Objects.requireNonNull(options, "options");
        List<Subscription> made;
        synchronized (lifecycle) {
            ConfigurationException.require(!closed, "aggregator '%s' is closed", config.name());
            // Arrays.asList, not List.of: a null pattern is the bus's to refuse, with a ConfigurationException quoting it
            made = Subscription.allOrNone(Arrays.asList(topicPatterns),
                    pattern -> bus.subscribe(group, pattern, Message.class, options, handler()));
            if (closed) { // closed inside the transport's subscribe, on this thread (by a handler): it missed these
                made.forEach(Subscription::close);
                throw new ConfigurationException("aggregator '" + config.name() + "' is closed");
            }
            subscriptions.addAll(made);
        }
        // Drops the ones no longer active: closed by the application, or stopped on their own (a fenced Kafka
        // member), which close() would have closed: closed here instead (a second close returns at once).
        for (Subscription subscription : subscriptions) {
            if (!subscription.isActive() && subscriptions.remove(subscription)) {
                subscription.close();
            }
        }
        return made;
    }

    /** The handler that feeds raw messages into this aggregator, to subscribe with custom options. */
    public EventHandler<Message> handler() {
        return (message, context) -> accept(message);
    }

    /** The stored group for {@code key}, if any. */
    public Optional<AggregationGroup> group(String key) {
        return config.store().find(config.name(), key);
    }

    /**
     * Adds one part; releases the group when it completes. Throws {@link AggregationException} for late parts
     * (not retriable) and for parts of a group whose outcome is under way (retriable).
     */
    public void accept(Message message) throws Exception {
        String key = config.correlation().apply(message);
        if (key == null || key.isBlank()) {
            throw AggregationException.uncorrelated(config.name(), message.id());
        }
        Instant now = scheduler.clock().instant();
        AggregatedPart part = AggregatedPart.of(message, bus.codec(), now);
        for (int attempt = 1; attempt <= MAX_CONFLICTS; attempt++) {
            Optional<AggregationGroup> stored = config.store().find(config.name(), key);
            if (stored.isPresent() && !stored.get().isOpen()) {
                AggregationGroup closed = stored.get();
                if (!closed.contains(message.id())) {
                    if (closed.state() == GroupState.RELEASING || closed.state() == GroupState.TIMING_OUT) {
                        // Its outcome is under way and may fail, reopening the group: only once the outcome is
                        // recorded is the part late. The bus's retry finds out which.
                        throw AggregationException.closing(config.name(), key, closed.state(), message.id());
                    }
                    throw AggregationException.latePart(config.name(), key, closed.state(), message.id());
                }
                if (closed.state() == GroupState.RELEASING && completedBy(closed, message.id())) {
                    // The part whose arrival completed the group was not acknowledged and the release was not
                    // recorded as done. Until the release's lease ends, the releaser that claimed the group may
                    // still be running (a scheduled retry of a failed release, another instance): releasing now
                    // would release the group twice. The part is in the group, and what becomes of the group is
                    // the lease's end's to decide: this instance checks the group then (a check of its own, so
                    // that an earlier deadline armed here is not put off) and takes the part. Refusing it would
                    // have the bus dead-letter it once its retries ran out, well within a lease of minutes, for
                    // a group that is released all the same. At the lease's end the check finds the release
                    // recorded, the group reopened by a failed release (its own deadline retries it), or the
                    // releaser dead: the group claimed again (of several instances taking it over, one wins the
                    // versioned save) and released again (at-least-once), as the part's redelivery after the
                    // lease does. Once COMPLETED, the same part (a redelivery, or a retried splitter publishing
                    // it again) is a duplicate like any other.
                    if (closed.deadline() != null && now.isBefore(closed.deadline())) {
                        checkAt(key, closed.deadline());
                        return;
                    }
                    if (outcomeRunsHere(key)) {
                        checkAt(key, now.plus(config.releaseLease()));
                        return;
                    }
                    AggregationGroup claimed = closed.withState(GroupState.RELEASING, now.plus(config.releaseLease()))
                            .withVersion(closed.version() + 1);
                    if (!config.store().save(claimed)) {
                        continue; // another instance claimed it first (or it changed): read it again
                    }
                    log.warn("part {} that completed group '{}' of aggregator '{}' was redelivered after the lease of its release passed, the release not recorded (its releaser died); releasing the group again",
                            message.id(), key, config.name());
                    arm(key, claimed.deadline());
                    try {
                        release(claimed);
                    } catch (Exception | Error e) {
                        // As a failed release of the normal path: reopened, so that the bus's retry of the part (or
                        // its replay from the DLT) completes it again, or its timeout (restarted) closes it, or
                        // without a timeout a retry of the release does, rather than left RELEASING until its
                        // lease ends.
                        reopen(claimed, now.plus(retryAfter(closed, now)));
                        throw e;
                    }
                }
                return; // redelivery of a part that was released with its group
            }
            AggregationGroup current = stored.orElseGet(() -> AggregationGroup.open(config.name(), key, now,
                    config.timeout() == null ? null : now.plus(config.timeout())));
            boolean added = !current.contains(message.id());
            Optional<SequenceInfo> sequence = added ? sequenceOf(key, message) : Optional.empty();
            List<AggregatedPart> beyond = sequence.isPresent() ? requireFitsSequence(current, part, sequence.get()) : List.of();
            AggregationGroup candidate = added ? without(current, beyond).withPart(part) : current;
            // the index moves on with the part (with or without sequence headers), so that neither the next part's
            // check nor completeOnSequenceEnd reads the group's parts again
            SequenceIndexes.Change change = added ? sequences.add(current, sequence, message.id(), completeOnSequenceEnd) : null;
            boolean complete = otherRules.test(candidate) || completeOnSequenceEnd
                    && (change != null ? change.sequenceComplete() : sequences.sequenceComplete(current));
            if (!added && !complete) {
                return; // redelivered part, nothing changes
            }
            AggregationGroup toSave = (complete ? candidate.withState(GroupState.RELEASING, now.plus(config.releaseLease()))
                    : candidate).withVersion(current.version() + 1);
            if (!beyond.isEmpty()) {
                // before the save that drops them, so that no crash loses them (a lost race sends them again,
                // under the same ids)
                int size = sequence.orElseThrow().size().orElseThrow();
                deadLetter(beyond, "aggregation-out-of-sequence", stray -> AggregationException.outOfSequence(config.name(),
                        key, stray.messageId(), stray.sequence().orElseThrow(), size));
            }
            // a part added (and none dropped) is appended: a durable store writes that part, not the whole group
            boolean saved = added && beyond.isEmpty() ? config.store().append(toSave) : config.store().save(toSave);
            if (!saved) {
                if (change != null) {
                    sequences.discard(change);
                }
                continue; // another writer changed the group: read it again
            }
            if (complete) {
                sequences.forget(key);
            } else if (change != null) {
                sequences.saved(change);
            }
            if (!complete) {
                if (stored.isEmpty() && toSave.deadline() != null) {
                    arm(key, toSave.deadline());
                }
                return;
            }
            arm(key, toSave.deadline()); // replaces the timeout with the end of the release's lease
            try {
                release(toSave);
            } catch (Exception | Error e) {
                reopen(toSave, candidate.deadline() != null ? candidate.deadline() : now.plus(retryAfter(candidate, now)));
                throw e;
            }
            return;
        }
        throw AggregationException.contended(config.name(), key, MAX_CONFLICTS);
    }

    /**
     * Runs the releaser on a group this instance claimed by saving it {@link GroupState#RELEASING}, then records it
     * {@link GroupState#COMPLETED} (a tombstone for keepClosed from the start of the release): released, so that a part of it arriving
     * again is a duplicate. The group counts as completed there, once, whatever number of releases failed before
     * (each reopened it).
     */
    private void release(AggregationGroup releasing) throws Exception {
        AggregationGroup completed = releasing.withState(GroupState.COMPLETED,
                scheduler.clock().instant().plus(config.keepClosed())).withVersion(releasing.version() + 1);
        outcomeStarts(releasing.key());
        try {
            releaseAwaitingPublishes(new Aggregate(completed, false, bus.codec()));
        } finally {
            outcomeEnded(releasing.key());
        }
        if (config.store().save(completed)) {
            arm(releasing.key(), completed.deadline());
            // Released once the part's delivery stays handled: on Kafka in exactly-once mode the release ran in the
            // transaction of the part's poll batch, which aborts with what the releaser published when a later record
            // of the batch fails an attempt; the part then comes again and must find the group open, not released.
            bus.transport().afterDelivery(() -> metric("completed"), () -> releaseWithdrawn(completed));
        } else {
            // the claim's lease passed during the release and another releaser took the group over
            log.warn("release of group '{}' of aggregator '{}' outlived its lease {} and was taken over: the group may have been released twice",
                    releasing.key(), config.name(), config.releaseLease());
        }
    }

    /**
     * Runs the releaser and waits for what it published (on this thread, awaited or not), so that a group is recorded
     * released only once its outcome went through: a publish the releaser does not wait for that fails (a class the
     * registry lacks, the transport's refusal, a closed bus) fails the release with its {@link
     * io.streamsaga.bus.PublishException}, as a releaser that threw, and the group is reopened for the release to run
     * again, rather than recorded released with its outcome lost (a redelivered part of a released group is only a
     * duplicate). Also on a timer (a retried release, a partial one), where no delivery waits for those publishes.
     */
    private void releaseAwaitingPublishes(Aggregate aggregate) throws Exception {
        bus.awaitingPublishes(() -> {
            config.releaser().release(aggregate);
            return null;
        });
    }

    /**
     * Refuses a part of a splitter's sequence that the group's parts of the same sequence contradict: numbered
     * beyond the size they carry, carrying another size, or numbered as one of them (under another message id).
     * Parts are numbered 1..size, one part each, so such a part is a faulty producer's (or a split published
     * again under new ids) and would otherwise be released with the group. Returns the group's parts that this
     * part, the first to carry its sequence's size, shows to be numbered beyond it: they are dead-lettered as it
     * is taken, as they would have been refused had they arrived after it.
     */
    private List<AggregatedPart> requireFitsSequence(AggregationGroup group, AggregatedPart part, SequenceInfo info) {
        int size = sequences.contradictedSize(group, info);
        if (size >= 0) {
            throw AggregationException.outOfSequence(config.name(), group.key(), part.messageId(), info, size);
        }
        String holder = sequences.holder(group, info);
        if (holder != null && !holder.equals(part.messageId())) {
            throw AggregationException.duplicateNumber(config.name(), group.key(), part.messageId(), info, holder);
        }
        List<String> beyond = sequences.beyondNewSize(group, info);
        if (beyond.isEmpty()) {
            return List.of();
        }
        List<AggregatedPart> parts = new ArrayList<>();
        for (AggregatedPart stored : group.parts()) {
            if (beyond.contains(stored.messageId())) {
                parts.add(stored);
            }
        }
        return parts;
    }

    /**
     * The sequence headers of {@code message}, if any. Headers that describe no part of a sequence (a size below the
     * number, a number that is no number) are refused as the aggregator refuses its other bad parts: a non-retriable
     * {@link AggregationException} naming the group, so the bus dead-letters the part and the group goes on without
     * it.
     */
    private Optional<SequenceInfo> sequenceOf(String key, Message message) {
        try {
            return SequenceInfo.of(message);
        } catch (ConfigurationException malformed) {
            Map<String, String> headers = message.headers();
            throw AggregationException.malformedSequence(config.name(), key, message.id(),
                    headers.get(MessageHeaders.SEQUENCE_ID), headers.get(MessageHeaders.SEQUENCE_NUMBER),
                    headers.get(MessageHeaders.SEQUENCE_SIZE), headers.get(MessageHeaders.SEQUENCE_LAST));
        }
    }

    /** {@code group} without {@code parts}. */
    private static AggregationGroup without(AggregationGroup group, List<AggregatedPart> parts) {
        if (parts.isEmpty()) {
            return group;
        }
        List<AggregatedPart> kept = new ArrayList<>(group.parts());
        kept.removeAll(parts);
        return new AggregationGroup(group.aggregator(), group.key(), group.version(), group.state(), kept,
                group.createdAt(), group.deadline());
    }

    /** Whether {@code messageId} is the part whose arrival completed {@code group}: its last part. */
    private static boolean completedBy(AggregationGroup group, String messageId) {
        return !group.parts().isEmpty() && group.parts().get(group.size() - 1).messageId().equals(messageId);
    }

    /**
     * The transport withdrew the delivery of the part whose handling released the group, with everything the releaser
     * published (a Kafka transaction that aborted): the group is reopened with its parts, as after a failed release, so
     * that the part, delivered again, releases it again (or, should it not come, its deadline does).
     */
    private void releaseWithdrawn(AggregationGroup completed) {
        log.info("release of group '{}' of aggregator '{}' was withdrawn with the delivery of its part (a transaction that"
                + " aborted); reopening the group to release it again", completed.key(), config.name());
        Instant now = scheduler.clock().instant();
        reopen(completed, now.plus(retryAfter(completed, now)));
    }

    /**
     * A failed release puts the group back to open, with all its parts and {@code deadline} as its timeout, so
     * the retried part completes it again; should that part never come back, the deadline retries the release
     * ({@link #retryRelease}): the group is complete, so its timeout policy does not apply.
     */
    private void reopen(AggregationGroup released, Instant deadline) {
        AggregationGroup reopened = released.withState(GroupState.OPEN, deadline).withVersion(released.version() + 1);
        if (config.store().save(reopened)) {
            if (deadline != null) {
                arm(released.key(), deadline);
            } else {
                cancel(released.key());
            }
        } else {
            log.warn("could not reopen group '{}' of aggregator '{}' after a failed release: it changed meanwhile",
                    released.key(), config.name());
        }
    }

    /**
     * Arms a timer for every stored group of this aggregator that has a deadline (done when building);
     * call again to take over the groups of another instance that stopped. Returns how many were armed.
     */
    public int rearm() {
        List<AggregationGroup> groups = config.store().withDeadlines(config.name());
        for (AggregationGroup group : groups) {
            arm(group.key(), group.deadline());
        }
        if (!groups.isEmpty()) {
            log.info("aggregator '{}' re-armed {} deadline(s) from its store", config.name(), groups.size());
        }
        return groups.size();
    }

    private void arm(String key, Instant deadline) {
        if (closed) {
            return;
        }
        Duration delay = Duration.between(scheduler.clock().instant(), deadline);
        Scheduler.Cancellable timer = timerScope.schedule(delay.isNegative() ? Duration.ZERO : delay, () -> onDeadline(key));
        Scheduler.Cancellable previous = timers.put(key, timer);
        if (previous != null) {
            previous.cancel();
        }
    }

    private void outcomeStarts(String key) {
        outcomesRunning.merge(key, 1, Integer::sum);
    }

    private void outcomeEnded(String key) {
        outcomesRunning.computeIfPresent(key, (k, runs) -> runs == 1 ? null : runs - 1);
    }

    private boolean outcomeRunsHere(String key) {
        return outcomesRunning.containsKey(key);
    }

    /**
     * Checks the group of {@code key} at {@code deadline} whatever this instance armed for it: a timer of its own,
     * not registered, so that it neither replaces nor puts off the group's timer (a check that finds the deadline
     * moved re-arms the group's timer for it).
     */
    private void checkAt(String key, Instant deadline) {
        if (closed) {
            return;
        }
        Duration delay = Duration.between(scheduler.clock().instant(), deadline);
        timerScope.schedule(delay.isNegative() ? Duration.ZERO : delay, () -> onDeadline(key));
    }

    private void cancel(String key) {
        Scheduler.Cancellable timer = timers.remove(key);
        if (timer != null) {
            timer.cancel();
        }
    }

    private void onDeadline(String key) {
        if (closed) {
            return;
        }
        try {
            handleDeadline(key);
        } catch (RuntimeException e) {
            // A timer thread must not die; the deadline stays in the store and is re-armed by rearm().
            log.error("deadline of group '{}' of aggregator '{}' failed: {}", key, config.name(), e.toString(), e);
        }
    }

    /**
     * Whether the completion rule holds for an open group at its deadline. An application's rule that throws here is
     * logged and the group taken as incomplete, so its timeout policy ends it: thrown out of the timer, the group
     * would stay open with no timer until {@link #rearm()}.
     */
    private boolean completeAtDeadline(AggregationGroup group) {
        try {
            return config.completion().test(group);
        } catch (RuntimeException e) {
            log.error("the completion rule of aggregator '{}' threw for group '{}' at its deadline; the group is taken"
                    + " as incomplete: {}", config.name(), group.key(), e.toString());
            return false;
        }
    }

    private void handleDeadline(String key) {
        for (int attempt = 1; attempt <= MAX_CONFLICTS; attempt++) {
            Optional<AggregationGroup> stored = config.store().find(config.name(), key);
            if (stored.isEmpty() || stored.get().deadline() == null) {
                timers.remove(key);
                return;
            }
            AggregationGroup group = stored.get();
            Instant now = scheduler.clock().instant();
            if (now.isBefore(group.deadline())) {
                arm(key, group.deadline()); // another instance moved the deadline
                return;
            }
            if ((group.state() == GroupState.RELEASING || group.state() == GroupState.TIMING_OUT) && outcomeRunsHere(key)) {
                // The lease passed while this instance's own outcome still runs: slow, not dead. Taking it over
                // would run it twice; its end records the group (or reopens it), and arms its next deadline.
                log.warn("the {} of group '{}' of aggregator '{}' on this instance outlived its lease {}: other instances may take it over and run it a second time; choose a longer releaseLease",
                        group.state() == GroupState.RELEASING ? "release" : "timeout outcome", key, config.name(), config.releaseLease());
                arm(key, now.plus(config.releaseLease()));
                return;
            }
            if (group.state() == GroupState.RELEASING || group.isOpen() && completeAtDeadline(group)) {
                // Only a failed release leaves a complete group open: its deadline (its timeout, or without one a
                // retry's) retries the release rather than wait for a retry or replay of its part that may never
                // come, and never closes it by the timeout policy: the group is complete, only its release failed,
                // so it is released whole, not as a partial group nor dead-lettered. A group still RELEASING at its
                // deadline (the end of its release's lease) was never recorded released nor reopened: its releaser
                // died during the release (perhaps the scheduled retry's, whose parts are no longer in flight to be
                // redelivered) and it is claimed and released again rather than deleted with its parts.
                if (retryRelease(group, now)) {
                    return;
                }
                continue;
            }
            boolean takeOver = group.state() == GroupState.TIMING_OUT;
            if (!group.isOpen() && !takeOver) {
                if (config.store().delete(group)) {
                    timers.remove(key);
                    return;
                }
                continue;
            }
            // Recorded before the outcome, so that a process dying during the release or the dead letters
            // leaves a group another instance or a restarted one finishes rather than a tombstone whose parts
            // went nowhere. The deadline is a lease: until it passes, the instance that saved it is finishing
            // the outcome and every other one leaves the group alone (it would release it a second time).
            // A TIMING_OUT group whose lease passed lost its instance (or its outcome threw an Error): it is
            // claimed the same way, so of several instances taking it over one finishes it.
            AggregationGroup timingOut = group.withState(GroupState.TIMING_OUT, now.plus(config.releaseLease()))
                    .withVersion(group.version() + 1);
            if (!config.store().save(timingOut)) {
                continue;
            }
            sequences.forget(key);
            if (takeOver) {
                log.warn("group '{}' of aggregator '{}' timed out and its outcome was not recorded as done; finishing it: {}",
                        key, config.name(), config.timeoutPolicy());
            } else {
                log.warn("group '{}' of aggregator '{}' timed out after {} with {} part(s): {}", key, config.name(),
                        Duration.between(group.createdAt(), now), group.size(), config.timeoutPolicy());
            }
            arm(key, timingOut.deadline()); // runs it again should the outcome end with an Error
            if (finishTimeout(timingOut, now)) {
                return;
            }
        }
        log.warn("deadline of group '{}' of aggregator '{}' lost {} races in a row; will retry", key, config.name(), MAX_CONFLICTS);
        arm(key, scheduler.clock().instant().plusSeconds(1));
    }

    /**
     * Releases again, whole, a complete group that a failed release reopened (at its deadline, whether its timeout
     * or a retry's), or one left {@link GroupState#RELEASING} past its deadline; should the releaser throw again,
     * reopens it for the next retry (one timeout later, or see {@link #retryAfter}). Returns false when the group
     * changed meanwhile (read it again).
     */
    private boolean retryRelease(AggregationGroup group, Instant now) {
        AggregationGroup releasing = group.withState(GroupState.RELEASING, now.plus(config.releaseLease()))
                .withVersion(group.version() + 1);
        if (!config.store().save(releasing)) {
            return false;
        }
        if (group.state() == GroupState.RELEASING) {
            log.warn("group '{}' of aggregator '{}' was left releasing past the lease of its release (its release was not recorded as done); releasing it again",
                    group.key(), config.name());
        } else {
            log.info("retrying the release of group '{}' of aggregator '{}' that failed before", group.key(), config.name());
        }
        arm(group.key(), releasing.deadline());
        try {
            release(releasing);
        } catch (Exception | Error e) {
            if (e instanceof Exception failure && givenUp(releasing, now)) {
                deadLetterUnreleased(releasing, failure, now);
                return true;
            }
            reopen(releasing, now.plus(retryAfter(group, now)));
            if (e instanceof Error error) {
                throw error;
            }
            log.error("release of group '{}' of aggregator '{}' failed again; will retry", group.key(), config.name(), e);
        }
        return true;
    }

    /**
     * Whether the release of a complete group, retried at its deadline, has failed for long enough to give up: with
     * a timeout, once {@code keepClosed} passed since the part that completed the group (its last) arrived. A group
     * whose releaser throws for ever (a poison group) is then dead-lettered rather than retried every timeout for
     * ever; without a timeout the release is retried until it succeeds.
     */
    private boolean givenUp(AggregationGroup group, Instant now) {
        return config.timeout() != null && !group.parts().isEmpty()
                && !now.isBefore(group.parts().get(group.size() - 1).receivedAt().plus(config.keepClosed()));
    }

    /**
     * Dead-letters the parts of a complete group whose release kept failing ({@code dlt-reason=aggregation-release-failed},
     * carrying the release's last error and its root cause, bounded: {@link AggregationException#releaseFailed}), then
     * records the group {@link GroupState#TIMED_OUT_DEAD_LETTERED}, a tombstone for keepClosed. Still
     * {@link GroupState#RELEASING} meanwhile: a crash leaves it to be released (or given up) again, the dead letters
     * published again under the same ids. Should a dead letter fail, the group is reopened for the next retry.
     */
    private void deadLetterUnreleased(AggregationGroup releasing, Exception failure, Instant now) {
        String key = releasing.key();
        AggregationException unreleased = AggregationException.releaseFailed(config.name(), key, releasing.size(),
                config.keepClosed(), failure);
        log.error("release of group '{}' of aggregator '{}' kept failing for {} since it completed; dead-lettering its {} part(s)",
                key, config.name(), config.keepClosed(), releasing.size(), failure);
        outcomeStarts(key);
        try {
            deadLetter(releasing.parts(), "aggregation-release-failed", part -> unreleased);
        } catch (RuntimeException e) {
            log.error("dead-lettering the parts of group '{}' of aggregator '{}' failed; reopening it", key, config.name(), e);
            reopen(releasing, now.plus(retryAfter(releasing, now)));
            return;
        } finally {
            outcomeEnded(key);
        }
        AggregationGroup closedGroup = releasing.withState(GroupState.TIMED_OUT_DEAD_LETTERED,
                scheduler.clock().instant().plus(config.keepClosed())).withVersion(releasing.version() + 1);
        if (config.store().save(closedGroup)) {
            arm(key, closedGroup.deadline());
            metric("release-failed-dead-lettered");
        } else {
            log.warn("dead-lettering the parts of group '{}' of aggregator '{}' outlived its lease {} and the group was taken over",
                    key, config.name(), config.releaseLease());
        }
    }

    /**
     * How long a group whose timeout outcome or release failed stays open before its deadline runs again: the
     * configured timeout, or without one (a release failed, or the group was stored with a deadline by an
     * aggregator that had a timeout since removed from the configuration) as long as the group had been open
     * when the outcome ran (at least 1 s, so retries back off), but no longer than the keep-closed time: a group
     * met long after its deadline (nothing ran meanwhile) is not postponed by its age.
     */
    private Duration retryAfter(AggregationGroup timingOut, Instant now) {
        if (config.timeout() != null) {
            return config.timeout();
        }
        Duration open = Duration.between(timingOut.createdAt(), now);
        Duration atLeast = open.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : open;
        return atLeast.compareTo(config.keepClosed()) > 0 ? config.keepClosed() : atLeast;
    }

    /**
     * Releases or dead-letters the parts of a group whose timeout struck, as the policy says, then records it
     * closed. Returns false when the group changed meanwhile (read it again).
     */
    private boolean finishTimeout(AggregationGroup timingOut, Instant now) {
        String key = timingOut.key();
        GroupState outcome = config.timeoutPolicy() == TimeoutPolicy.RELEASE_PARTIAL
                ? GroupState.TIMED_OUT_RELEASED : GroupState.TIMED_OUT_DEAD_LETTERED;
        AggregationGroup closedGroup = timingOut.withState(outcome, now.plus(config.keepClosed()))
                .withVersion(timingOut.version() + 1);
        outcomeStarts(key);
        try {
            if (outcome == GroupState.TIMED_OUT_RELEASED) {
                releaseAwaitingPublishes(new Aggregate(closedGroup, true, bus.codec()));
            } else {
                deadLetter(closedGroup);
            }
        } catch (Exception e) {
            // Not (fully) released or dead-lettered: reopen it so the timeout runs again, rather than let its
            // parts vanish with the tombstone.
            log.error("{} of group '{}' of aggregator '{}' failed; reopening it", outcome == GroupState.TIMED_OUT_RELEASED
                    ? "partial release" : "dead-lettering the parts", key, config.name(), e);
            reopen(timingOut, now.plus(retryAfter(timingOut, now)));
            return true;
        } finally {
            outcomeEnded(key);
        }
        if (!config.store().save(closedGroup)) {
            return false;
        }
        arm(key, closedGroup.deadline());
        metric(outcome == GroupState.TIMED_OUT_RELEASED ? "timed-out-released" : "timed-out-dead-lettered");
        return true;
    }

    private void deadLetter(AggregationGroup group) {
        AggregationException timedOut = AggregationException.timedOut(config.name(), group.key(), group.size());
        deadLetter(group.parts(), "aggregation-timeout", part -> timedOut);
    }

    /**
     * Publishes each part to its topic's dead-letter topic, with {@code reason} and the error made for it. A dead letter
     * the transport refuses as too large ({@link MessageTooLargeException}: a part just under the limit, with these
     * headers added) is sent again at once leaving out one thing more, each marked by a header: the payload, then the
     * part's headers too, then its key too, then, for a type over {@value #MAX_KEPT_TYPE_LENGTH} characters, its type
     * too; its dead-letter headers name the part's message id, so the part is found on
     * its topic (and in the group's tombstone while {@code keepClosed} keeps it). Refused even so, it throws, and the
     * outcome is tried again later as after any failed dead letter.
     */
    private void deadLetter(List<AggregatedPart> parts, String reason, Function<AggregatedPart, AggregationException> error) {
        for (AggregatedPart part : parts) {
            Map<String, String> headers = new LinkedHashMap<>();
            headers.put(MessageHeaders.DLT_REASON, reason);
            headers.put(MessageHeaders.DLT_ERROR_CLASS, AggregationException.class.getName());
            headers.put(MessageHeaders.DLT_ERROR_MESSAGE, error.apply(part).getMessage());
            headers.put(MessageHeaders.DLT_ORIGINAL_TOPIC, part.topic());
            headers.put(MessageHeaders.DLT_ORIGINAL_GROUP, config.name());
            headers.put(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID, part.messageId());
            Message original = part.toMessage();
            String id = DerivedIds.uuidOf(part.messageId(), config.name());
            String topic = part.topic() + MessageHeaders.DEAD_LETTER_SUFFIX;
            // Sent from a timer (outside any Kafka transaction, which a refused send would spoil), so the next form
            // goes at once; on a consumer thread in exactly-once mode (the out-of-sequence parts) it fails as any send
            // after a failed one in that transaction, failing the part that brought them.
            for (int omitted = 0; ; omitted++) {
                try {
                    bus.publish(deadLetterOf(original, id, topic, headers, omitted)).toCompletableFuture().join();
                    break;
                } catch (CompletionException e) {
                    if (!(e.getCause() instanceof MessageTooLargeException) || omitted == 4
                            || omitted == 3 && original.type().length() <= MAX_KEPT_TYPE_LENGTH) {
                        throw e;
                    }
                    log.warn("the dead letter of part {} of aggregator '{}' was refused as too large ({}); sending it"
                            + " without {} too", part.messageId(), config.name(), e.getCause().toString(),
                            omitted == 0 ? "its payload" : omitted == 1 ? "the part's headers"
                                    : omitted == 2 ? "the part's key" : "the part's type");
                }
            }
            bus.metrics().eventDeadLettered(part.topic(), config.name(), reason);
        }
    }

    /**
     * The dead letter of {@code original} under {@code id} on {@code topic}: the part with the dead-letter
     * {@code headers} added, or, {@code omitted} steps on, without its payload (1), then without its headers too, only
     * the dead-letter ones kept (2), then without its key too (3), then without its type too, the dead letter's type
     * being its topic's name (4), each step marked by a header saying so.
     */
    private static Message deadLetterOf(Message original, String id, String topic, Map<String, String> headers,
                                        int omitted) {
        if (omitted == 0) {
            return original.toBuilder().id(id).headers(headers).build().withTopic(topic);
        }
        String where = "; the part is message " + StreamSagaException.quote(original.id()) + " of its topic";
        Map<String, String> marked = new LinkedHashMap<>(headers);
        marked.put(MessageHeaders.DLT_PAYLOAD_OMITTED, "the dead letter with the payload was refused as too large" + where);
        if (omitted == 1) {
            return original.toBuilder().id(id).headers(marked).payload(null).build().withTopic(topic);
        }
        marked.put(MessageHeaders.DLT_HEADERS_OMITTED, "the dead letter without the payload was refused as too large;"
                + " the part had " + original.headers().size() + " header(s)" + where);
        if (omitted >= 3) {
            marked.put(MessageHeaders.DLT_KEY_OMITTED, "the dead letter without the payload and the headers was refused"
                    + " as too large; the part's key was " + StreamSagaException.quote(original.key()) + where);
        }
        String type = original.type();
        if (omitted == 4) {
            marked.put(MessageHeaders.DLT_TYPE_OMITTED, "the dead letter without the payload, the headers and the key was"
                    + " refused as too large; the part's type was " + StreamSagaException.quote(type) + where);
            type = topic; // what a Kafka record without an event-type header reads as
        }
        return new Message(id, topic, omitted >= 3 ? null : original.key(), type, original.version(), null, marked,
                original.timestamp());
    }

    private void metric(String outcome) {
        bus.metrics().increment(GROUPS_METRIC, Map.of("aggregator", config.name(), "outcome", outcome));
    }

    /**
     * Closes the subscriptions made through it and cancels its queued timers (the store keeps the deadlines), then
     * waits, up to 10 s, for a deadline being handled on another thread (a release running) to end, so that once it
     * returns the aggregator does no more work; called from such a release, it does not wait for it.
     */
    @Override
    public void close() {
        synchronized (lifecycle) { // a subscribe under way finishes first: its subscriptions are closed here too
            closed = true;
            for (Subscription subscription : subscriptions) {
                subscription.close();
            }
        }
        timers.values().forEach(Scheduler.Cancellable::cancel);
        timers.clear();
        // Outside the lifecycle lock: the checks queued without a registered timer are cancelled, and a deadline
        // being handled on another thread (a release running) ends before close() returns.
        timerScope.close();
    }

    /**
     * Immutable configuration.
     *
     * @param name          stable name, stored with every group (never derived from a class name)
     * @param store         where groups live
     * @param correlation   the correlation key of a message (null or blank: dead-lettered)
     * @param completion    the combined completion rules
     * @param timeout       how long a group may stay open, or null for no timeout
     * @param timeoutPolicy what a timeout does
     * @param keepClosed    how long a closed group is kept to recognise late parts
     * @param releaseLease  how long a release holds its group: until it ends, no other release of the group runs;
     *                      once it passed without the release recorded, the releaser is taken to have died and the
     *                      group is released again
     * @param releaser      what a released group becomes
     * @param sequenceIndexCapacity how many groups' sequences an instance keeps indexed between parts (0: none)
     */
    public record Config(String name, AggregationStore store, Function<Message, String> correlation,
                         Predicate<AggregationGroup> completion, Duration timeout, TimeoutPolicy timeoutPolicy,
                         Duration keepClosed, Duration releaseLease, GroupReleaser releaser,
                         int sequenceIndexCapacity) {
        public Config {
            ConfigurationException.require(name != null && !name.isBlank(), "aggregator name must not be blank, but was '%s'", name);
            Objects.requireNonNull(store, "store");
            Objects.requireNonNull(correlation, "correlation");
            Objects.requireNonNull(completion, "completion");
            if (timeout != null) { // null: no timeout
                ConfigurationException.requirePositive(timeout, "aggregator timeout");
            }
            Objects.requireNonNull(timeoutPolicy, "timeoutPolicy");
            ConfigurationException.requirePositive(keepClosed, "keepClosed");
            ConfigurationException.requirePositive(releaseLease, "releaseLease");
            ConfigurationException.require(releaser != null, "aggregator '%s' needs a releaser (onRelease)", name);
            ConfigurationException.require(sequenceIndexCapacity >= 0,
                    "sequenceIndexCapacity must be 0 or more, but was %s", sequenceIndexCapacity);
        }
    }

    /** Builds an {@link EventAggregator}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final AggregationStore store;
        private String name;
        private Function<Message, String> correlation = Builder::defaultCorrelation;
        private final List<Predicate<AggregationGroup>> rules = new ArrayList<>();
        private boolean completeOnSequenceEnd;
        private Duration timeout;
        private TimeoutPolicy timeoutPolicy = TimeoutPolicy.DEAD_LETTER;
        private Duration keepClosed = Duration.ofHours(1);
        private Duration releaseLease = Duration.ofMinutes(5);
        private int sequenceIndexCapacity = 4096;
        private GroupReleaser releaser;

        private Builder(EventBus bus, AggregationStore store) {
            this.bus = Objects.requireNonNull(bus, "bus");
            this.store = Objects.requireNonNull(store, "store");
        }

        private static String defaultCorrelation(Message message) {
            String sequence = message.headers().get(MessageHeaders.SEQUENCE_ID);
            return sequence != null ? sequence : message.correlationId().orElse(null);
        }

        /** The aggregator's stable name (required), under which its groups are stored. */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /** The correlation key of a message (default: sequence id, else correlation id). */
        public Builder correlateBy(Function<Message, String> correlation) {
            this.correlation = Objects.requireNonNull(correlation, "correlation");
            return this;
        }

        /** Correlates by a top-level field of the JSON payload, such as {@code orderId}. */
        public Builder correlateByField(String field) {
            ConfigurationException.require(field != null && !field.isBlank(), "correlation field must not be blank, but was '%s'", field);
            this.correlation = message -> {
                JsonNode value = bus.codec().toTree(message.payload()).get(field);
                return value == null || value.isNull() ? null : value.asText();
            };
            return this;
        }

        /** Completes a group when {@code predicate} holds (the source's {@code isComplete}). */
        public Builder completeWhen(Predicate<AggregationGroup> predicate) {
            rules.add(Objects.requireNonNull(predicate, "predicate"));
            return this;
        }

        /** Completes a group when it has {@code size} parts. */
        public Builder completeOnSize(int size) {
            ConfigurationException.require(size >= 1, "completion size must be 1 or more, but was %s", size);
            rules.add(group -> group.size() >= size);
            return this;
        }

        /**
         * Completes a group when the splitter's last part and all parts numbered before it arrived. Whatever the
         * completion rules, the aggregator keeps one part per number of a sequence, none beyond its size (see the
         * class description).
         */
        public Builder completeOnSequenceEnd() {
            completeOnSequenceEnd = true;
            return this;
        }

        /**
         * Closes a group that stays open for {@code timeout} without completing, as {@code policy} says. A complete
         * group a failed release reopened is released whole at its deadline instead (and retried every
         * {@code timeout} while its releaser throws, until {@code keepClosed} passed since it completed: its parts are
         * then dead-lettered with the release's error).
         */
        public Builder timeout(Duration timeout, TimeoutPolicy policy) {
            this.timeout = timeout;
            this.timeoutPolicy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /**
         * How long a closed group is kept so late parts are recognised (default 1 hour); with a timeout, also how
         * long the release of a complete group is retried (every timeout) before its parts are dead-lettered.
         */
        public Builder keepClosed(Duration keepClosed) {
            this.keepClosed = keepClosed;
            return this;
        }

        /**
         * How long a release holds its group (default 5 minutes), and so does a timeout's outcome (its partial
         * release or dead letters): meanwhile the completing part redelivered (or a scheduled retry, a timer, on
         * any instance) does not release the group again, so a group is released once when nothing crashed. Once it passed with the release not recorded, the releaser is taken to have died: the
         * completing part's redelivery, or the group's deadline, releases the group again. Choose a lease longer
         * than the slowest release: the instance running one that outlives it does not take it over (logged as a
         * warning), but another instance may then (the completing part redelivered to it, or a deadline it
         * re-armed) and run it a second time.
         */
        public Builder releaseLease(Duration releaseLease) {
            this.releaseLease = releaseLease;
            return this;
        }

        /**
         * How many groups an instance keeps its sequence index of (default 4096), the least recently used one
         * dropped first. The index (the sizes, the part holding each number, the numbers present) lets the
         * sequence checks and {@link #completeOnSequenceEnd()} take a part without decoding the group's parts
         * again; a group not indexed is indexed again from all its parts when its next part comes. Set it to the
         * number of groups with numbered parts open at once on an instance: fewer, and each part of the others
         * costs a read of its whole group (logged as a warning the first time a group is dropped). Its memory
         * grows with the numbered parts of the groups indexed (an entry per number); 0 keeps none.
         */
        public Builder sequenceIndexCapacity(int groups) {
            this.sequenceIndexCapacity = groups;
            return this;
        }

        /** What a released group becomes (required). */
        public Builder onRelease(GroupReleaser releaser) {
            this.releaser = releaser;
            return this;
        }

        /**
         * Builds the aggregator and re-arms the deadlines stored under its name. Refuses an aggregator with
         * neither a completion rule nor a timeout: its groups could never close.
         */
        public EventAggregator build() {
            ConfigurationException.require(!rules.isEmpty() || completeOnSequenceEnd || timeout != null,
                    "aggregator '%s' has no completion rule and no timeout: its groups would never close", name);
            List<Predicate<AggregationGroup>> copy = List.copyOf(rules);
            Predicate<AggregationGroup> others = group -> {
                for (Predicate<AggregationGroup> rule : copy) {
                    if (rule.test(group)) {
                        return true;
                    }
                }
                return false;
            };
            boolean sequenceEnd = completeOnSequenceEnd;
            Predicate<AggregationGroup> completion = sequenceEnd ? others.or(AggregationGroup::sequenceComplete) : others;
            EventAggregator aggregator = new EventAggregator(bus, new Config(name, store, correlation, completion,
                    timeout, timeoutPolicy, keepClosed, releaseLease, releaser, sequenceIndexCapacity), others, sequenceEnd);
            aggregator.rearm();
            return aggregator;
        }
    }
}
