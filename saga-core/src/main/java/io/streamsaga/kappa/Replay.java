package io.streamsaga.kappa;

import io.streamsaga.bus.Subscription;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
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
    private final List<Subscription> subscriptions;

    Replay(String group, Map<String, String> groups, Supplier<ReplayProgress> progress,
           CompletableFuture<ReplayProgress> caughtUp, List<Subscription> subscriptions) {
        this.group = group;
        this.groups = Map.copyOf(groups);
        this.progress = progress;
        this.caughtUp = caughtUp;
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
     * with a {@link CancellationException} when the replay is {@linkplain #close() closed} before. Callbacks run
     * on the consumer thread that handled the last record.
     */
    public CompletionStage<ReplayProgress> caughtUp() {
        return caughtUp.minimalCompletionStage();
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
     * rather than leave whoever waits for it waiting forever.
     */
    @Override
    public void close() {
        subscriptions.forEach(Subscription::close);
        caughtUp.completeExceptionally(new CancellationException("replay '" + group + "' was closed before it caught up"));
    }
}
