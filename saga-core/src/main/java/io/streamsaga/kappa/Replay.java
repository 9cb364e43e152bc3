package io.streamsaga.kappa;

import io.streamsaga.bus.Subscription;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A running replay started by a {@link Reprocessor}: its consumer groups read the topics from the
 * beginning. Thread-safe.
 */
public final class Replay implements AutoCloseable {
    private final String group;
    private final Map<String, String> groups;
    private final Supplier<ReplayProgress> progress;
    private final CompletableFuture<ReplayProgress> caughtUp;
    private final Supplier<CompletionStage<ReplayProgress>> caughtUpToNow;
    private final Function<Map<String, Map<Integer, Long>>, CompletionStage<ReplayProgress>> caughtUpTo;
    private final Runnable onClose;
    private final List<Subscription> subscriptions;

    Replay(String group, Map<String, String> groups, Supplier<ReplayProgress> progress,
           CompletableFuture<ReplayProgress> caughtUp, Supplier<CompletionStage<ReplayProgress>> caughtUpToNow,
           Function<Map<String, Map<Integer, Long>>, CompletionStage<ReplayProgress>> caughtUpTo,
           Runnable onClose, List<Subscription> subscriptions) {
        this.group = group;
        this.groups = Map.copyOf(groups);
        this.progress = progress;
        this.caughtUp = caughtUp;
        this.caughtUpToNow = caughtUpToNow;
        this.caughtUpTo = caughtUpTo;
        this.onClose = onClose;
        this.subscriptions = List.copyOf(subscriptions);
    }

    /** The replay's group prefix. */
    public String group() {
        return group;
    }

    /** The consumer group reading each topic. */
    public Map<String, String> groups() {
        return groups;
    }

    /** Position reached against the end offsets taken at the start, from the transport's committed offsets. */
    public ReplayProgress progress() {
        return progress.get();
    }

    /**
     * Completes once every partition reached the position it had when the replay started, or exceptionally
     * with a {@link CancellationException} when the replay is {@linkplain #close() closed} before. Checked when a
     * handled record takes a partition to its target, and, while the replay has passed no record for 100 ms, against
     * the groups' committed offsets on the bus's scheduler: a partition whose end lies past the records handed to a
     * handler (a topic whose last write was a transaction ends past its commit marker) or that another member of the
     * group handles shows as reached only there. Callbacks run on the consumer thread that handled the last record,
     * or the scheduler's.
     */
    public CompletionStage<ReplayProgress> caughtUp() {
        return caughtUp.minimalCompletionStage();
    }

    /**
     * Completes once the replay has passed every record published to its topics before this call: takes the end offsets
     * of every partition of its topics now ({@link io.streamsaga.spi.Transport#endOffsets}) and completes with the
     * progress against them once each partition's handled position reached its end, a record whose handler kept
     * failing (or that could not be decoded) counting as passed once its dead letter is sent, as for
     * {@link #caughtUp()}. For read-your-writes after a publish, a test without polling, or a readiness check. Completes
     * at once when nothing is pending (a topic or partition with no records has nothing to pass); exceptionally with a
     * {@link CancellationException} when the replay is {@linkplain #close() closed} before it got there (or already
     * closed at the call). Records published after the call, and partitions or topics created after it, are not waited
     * for.
     *
     * <p>The call asks the transport for each topic's end offsets (on Kafka two Admin requests a topic). While no stage
     * is pending a handled record pays one read of an empty queue; while one is, a record that takes its partition to
     * that stage's end checks it, and every 100 ms (on the bus's scheduler) the groups' committed offsets are read for
     * every pending stage, for what no handler of this process passes: records another member of the group handles,
     * Kafka's transaction markers (a topic written in transactions ends past its last record) and aborted or
     * retention-deleted records. Callbacks run on the thread that completes the stage: the caller's when nothing was
     * pending, else a consumer thread of the replay or the scheduler's. Never wait for the stage in a handler of the
     * replay itself, which would wait for its own consumer thread. What the transport throws asking for the end
     * offsets (on Kafka a retriable {@code KafkaTransportException} past its request timeout) reaches the caller.
     *
     * @throws io.streamsaga.ConfigurationException for a {@link Reprocessor.Mode#UNTIL_TARGET} replay, which never
     *                                              applies what was published after its start
     */
    public CompletionStage<ReplayProgress> caughtUpToNow() {
        return caughtUpToNow.get();
    }

    /**
     * Completes once the replay has passed every record below {@code positions}, per topic and partition the next
     * offset to reach (as {@link io.streamsaga.spi.Transport#endOffsets} gives them): {@link #caughtUpToNow()} for
     * end offsets taken earlier, with the same completion (a dead-lettered record counting as passed once its dead
     * letter is sent, the groups' committed offsets read every 100 ms while it is pending), callbacks and
     * {@link CancellationException} on {@link #close()}. It completes at once when the replay is already there; a
     * partition or topic of the replay left out is not waited for, and a position past the end of its partition is
     * waited for until records reach it. For a caller that took the offsets itself, before this replay started or on
     * another replay of the same topics (a projection moving a pending {@code caughtUpToNow()} over to the version a
     * rebuild swapped in).
     *
     * @throws io.streamsaga.ConfigurationException when {@code positions} is null, names a topic the replay does not
     *                                              read (its positions there would never be reached), holds a negative
     *                                              partition or offset or a null, or the replay is a
     *                                              {@link Reprocessor.Mode#UNTIL_TARGET} one
     */
    public CompletionStage<ReplayProgress> caughtUpTo(Map<String, Map<Integer, Long>> positions) {
        return caughtUpTo.apply(positions);
    }

    /** Whether the replay has reached its target. */
    public boolean isCaughtUp() {
        return caughtUp.isDone() && !caughtUp.isCompletedExceptionally();
    }

    /** Whether every subscription still delivers (a bounded replay stops once caught up). */
    public boolean isActive() {
        return subscriptions.stream().anyMatch(Subscription::isActive);
    }

    /**
     * Stops the replay's subscriptions; their groups keep their positions. A replay closed before it caught
     * up never will: {@link #caughtUp()} then completes exceptionally with a {@link CancellationException}
     * rather than leave whoever waits for it waiting forever; so does a pending {@link #caughtUpToNow()} or
     * {@link #caughtUpTo}. The 100 ms check of committed offsets stops too: close() waits for a run of it in progress
     * on another thread (up to the scheduler's {@link io.streamsaga.time.Scheduler#closeWait()}), so that no committed
     * offsets are read for the replay once it has returned. That run may be completing a stage of the replay, whose
     * callbacks run on it: do not close the replay holding a lock one of them takes.
     */
    @Override
    public void close() {
        onClose.run(); // first: a record its subscriptions finish while they close must not complete a stage of a replay stopped
        subscriptions.forEach(Subscription::close);
        caughtUp.completeExceptionally(new CancellationException("replay '" + group + "' was closed before it caught up"));
    }
}
