package io.streamsaga.kafka;

import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.kafka.internal.ConsumerLoop;

import java.time.Duration;
import java.util.Collection;
import java.util.concurrent.CompletableFuture;

/**
 * A consumer group member on Kafka: one {@code KafkaConsumer} polled by one thread. Returned by
 * {@link KafkaTransport#subscribe}; the bus wraps it, so reach it through {@link KafkaTransport#subscriptions()}
 * when you need {@link #awaitAssignment}. Thread-safe.
 */
public final class KafkaSubscription implements Subscription {
    private final String group;
    private final TopicPattern pattern;
    private final ConsumerLoop loop;
    private final CompletableFuture<Void> closeCalled = new CompletableFuture<>();

    /**
     * @param onClosed runs once, when {@link #close()} was called and the member's thread has ended (its
     *                 producer closed): from inside a handler, close cannot wait for that
     */
    KafkaSubscription(String group, TopicPattern pattern, ConsumerLoop loop, Runnable onClosed) {
        this.group = group;
        this.pattern = pattern;
        this.loop = loop;
        closeCalled.runAfterBoth(loop.finished(), onClosed);
    }

    @Override
    public String group() {
        return group;
    }

    @Override
    public TopicPattern pattern() {
        return pattern;
    }

    @Override
    public boolean isActive() {
        return loop.isRunning();
    }

    /**
     * Waits until the group coordinator has assigned this member its partitions (possibly none) and their
     * start positions are fixed; records published after that are delivered. Returns false on timeout; a timeout
     * longer than {@link io.streamsaga.ConfigurationException#MAX_DURATION} (such as
     * {@code ChronoUnit.FOREVER.getDuration()}) is taken as that, as the schedulers take a delay. Called
     * from a handler of another member of the same group, it waits out the timeout: the group's rebalance
     * waits for that member, whose thread is the caller.
     */
    public boolean awaitAssignment(Duration timeout) {
        try {
            return loop.awaitAssignment(timeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Stops polling, commits what was handled (also the record a handler was handling, and in the interrupt
     * below what was handled before it), leaves the group and ends the thread, waiting up to the close
     * timeout for it; then interrupts the thread (a handler in a retry sleep or a blocking call) and waits up
     * to the close timeout again, after which it logs a warning and returns, the thread ending on its own.
     * Called from inside one of its handlers, it returns at once and the thread ends after that record.
     * Idempotent: a later call does not touch the member's consumer again, it only waits as the first does
     * (returning at once once the thread has ended).
     */
    @Override
    public void close() {
        loop.close();
        closeCalled.complete(null);
    }

    /**
     * Closes {@code subscriptions} as {@link #close()} closes one, but together: every member is told to stop
     * before any is waited for, so the close timeout runs once for all, not once per subscription.
     */
    static void closeAll(Collection<KafkaSubscription> subscriptions, Duration closeTimeout) {
        ConsumerLoop.closeAll(subscriptions.stream().map(subscription -> subscription.loop).toList(), closeTimeout);
        subscriptions.forEach(subscription -> subscription.closeCalled.complete(null));
    }

    @Override
    public String toString() {
        return "KafkaSubscription[group=" + group + ", pattern=" + pattern + ", active=" + isActive() + "]";
    }
}
