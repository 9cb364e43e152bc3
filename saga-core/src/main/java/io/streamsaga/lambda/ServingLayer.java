package io.streamsaga.lambda;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.Reprocessor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiFunction;
import java.util.function.BinaryOperator;
import java.util.function.Supplier;

/**
 * The serving layer of a Lambda architecture over one topic: it answers queries by merging a batch view
 * (recomputed now and then from the whole log, like the source's daily job) with a real-time view
 * (updated per event), and never counts an event twice.
 *
 * <p>The batch view carries the log position it covers ({@link BatchView#covers()}). The real-time side
 * reads the topic from the beginning under its own group and keeps only the events at or after that
 * position; when a newer batch view is installed, the events it now covers are dropped from the
 * real-time side and the real-time view is refolded from the rest. So the merged view always covers
 * exactly the events below {@link #position()} in every partition, each once, also when the transport
 * delivers a record again (at-least-once: after a lost commit). An event whose fold failed is not in the view, and
 * the position does not pass it while the bus retries it; once the bus dead-letters it, the position passes it
 * with the next event of its partition (or a batch view covering it). Real-time events are kept
 * until a batch view covers them: recompute the batch regularly to bound that memory.
 *
 * <p>The application supplies the empty view, the fold of one event into a view, and the merge of a batch
 * view with a real-time view; views should be immutable values (the fold returns a new view). A batch is
 * either recomputed here ({@link #recomputeBatch()}, a bounded replay under a new consumer group) or
 * computed elsewhere and installed ({@link #installBatch}). Each recompute reads under a new consumer group
 * ({@code <name>.batch-<n>}); on a broker, old groups expire with the broker's offset retention.
 *
 * <p>The views live in memory, so after a restart on a durable log they start empty: {@link #start()} then reads under
 * a real-time group that never read the topic ({@code <name>.realtime-2}, {@code -3}...; on a broker, those left behind
 * expire as the batch groups do), from the earliest position again, rather than resume the used one at its committed
 * position (which left the events below it out of the view while {@link #position()} claimed them). Until a batch view
 * covers them the real-time side holds the whole log, as at the first start: recompute the batch soon after a restart.
 * The views are this process's: give each instance of an application a layer name of its own, as instances under one
 * name may take the same real-time group and split the topic's partitions between them: those starting together, and
 * on a broker also one started later while the group has committed nothing on the topic (it was still empty).
 * Thread-safe.
 *
 * @param <E> the event type
 * @param <V> the view type
 */
public final class ServingLayer<E, V> implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ServingLayer.class);

    private final EventBus bus;
    private final String name;
    private final String topic;
    private final Class<E> eventType;
    private final Supplier<V> empty;
    private final BiFunction<V, E, V> fold;
    private final BinaryOperator<V> merge;

    private BatchView<V> batch;
    private V realtime;
    /** Real-time events not yet covered by the batch view, in arrival order. */
    private final List<Positioned<E>> uncovered = new ArrayList<>();
    private final Map<Integer, Long> realtimeReached = new TreeMap<>();
    /**
     * Per partition, the offset after the last event folded into the real-time side: delivery is
     * at-least-once, and a record below it is one delivered again (after a lost commit) and already counted.
     */
    private final Map<Integer, Long> folded = new TreeMap<>();
    /**
     * Held while the real-time subscription is made or closed, and guarding it; never taken by the handler or by
     * queries (they take the layer's monitor), so a close waits for a subscription being made without blocking them.
     */
    private final Object lifecycle = new Object();
    private Subscription subscription;
    /** A start() was accepted (guarded by the layer's monitor, so that a second one is refused at once). */
    private boolean started;
    private int batchRuns;
    /** Batch recomputes still replaying; close() stops them. */
    private final java.util.Set<Replay> recomputing = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    private ServingLayer(Builder<E, V> builder) {
        this.bus = builder.bus;
        this.name = builder.name;
        this.topic = builder.topic;
        this.eventType = builder.eventType;
        this.empty = builder.empty;
        this.fold = builder.fold;
        this.merge = builder.merge;
        this.realtime = empty.get();
        this.batch = new BatchView<>(empty.get(), Map.of(), bus.scheduler().clock().instant());
    }

    /** Starts a serving layer named {@code name} (prefix of its consumer groups) over {@code topic}. */
    public static <E> Builder<E, ?> builder(EventBus bus, String name, String topic, Class<E> eventType) {
        return new Builder<>(bus, name, topic, eventType);
    }

    /**
     * Subscribes the real-time side (group {@code <name>.realtime}, or the first {@code <name>.realtime-<n>} that never
     * read the topic, from the earliest position); queries are answered meanwhile, and a {@link #close()} meanwhile
     * waits for the subscription to close it. Refused once started or closed.
     */
    public ServingLayer<E, V> start() {
        synchronized (this) {
            ConfigurationException.require(!closed, "serving layer '%s' is closed", name);
            ConfigurationException.require(!started, "serving layer '%s' is already started", name);
            started = true;
        }
        // Not under the layer's monitor: on a broker subscribe waits for the group's assignment (seconds), during
        // which queries, which take it, would wait too.
        synchronized (lifecycle) {
            if (closed) {
                return this; // closed before it could subscribe: nothing to make
            }
            Subscription made;
            try {
                made = bus.subscribe(unusedRealtimeGroup(), topic, eventType,
                        SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), this::onRealtime);
            } catch (RuntimeException | Error e) {
                synchronized (this) {
                    started = false;
                }
                throw e;
            }
            if (closed) {
                made.close(); // close() ran inside subscribe, on this thread (a handler the transport ran there)
            } else {
                subscription = made;
            }
        }
        return this;
    }

    /**
     * {@code <name>.realtime}, or when that group read the topic before (a restart on a durable log) the first of
     * {@code <name>.realtime-2}, {@code -3}... that never did: the views start empty, and a used group would resume at
     * its committed position, leaving the events below it out of the view while {@link #position()} claimed them.
     */
    private String unusedRealtimeGroup() {
        String group = name + ".realtime";
        for (int n = 2; Reprocessor.hasRead(bus.transport(), group, topic); n++) {
            group = name + ".realtime-" + n;
        }
        return group;
    }

    private synchronized void onRealtime(E event, DeliveryContext ctx) {
        if (ctx.offset() < batch.coveredUpTo(ctx.partition())) {
            reached(ctx); // the batch view has it already
            return;
        }
        if (ctx.offset() < folded.getOrDefault(ctx.partition(), 0L)) {
            log.debug("serving layer '{}': event at {}@{} delivered again, already counted", name, ctx.partition(), ctx.offset());
            reached(ctx);
            return;
        }
        // Fold first: a fold that throws is retried (or dead-lettered) by the bus and must leave nothing
        // behind, or a later refold would count the event once per attempt; nor may the position pass the event
        // until it is in the view (an answer taken between two attempts would claim it).
        V next = fold.apply(realtime, event);
        uncovered.add(new Positioned<>(ctx.partition(), ctx.offset(), event));
        folded.put(ctx.partition(), ctx.offset() + 1);
        realtime = next;
        reached(ctx);
    }

    private void reached(DeliveryContext ctx) {
        realtimeReached.merge(ctx.partition(), ctx.offset() + 1, Math::max);
    }

    /**
     * Installs a batch view computed elsewhere. An older batch (covering less in some partition than the
     * installed one) is refused, since it would bring back events the real-time side already dropped.
     *
     * @throws ConfigurationException when the batch covers less than the installed one, or the layer is closed (its
     *                                views stay as they were at close, as a recompute of a closed layer installs nothing)
     */
    public synchronized void installBatch(BatchView<V> next) {
        Objects.requireNonNull(next, "batch view");
        ConfigurationException.require(!closed, "serving layer '%s' is closed: cannot install the batch view covering %s",
                name, next.covers());
        ConfigurationException.require(!isOlderThanInstalled(next),
                "serving layer '%s': batch view covers %s, older than the installed one %s", name, next.covers(), batch.covers());
        install(next);
    }

    private boolean isOlderThanInstalled(BatchView<V> next) {
        for (Map.Entry<Integer, Long> covered : batch.covers().entrySet()) {
            if (next.coveredUpTo(covered.getKey()) < covered.getValue()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Installs a recompute's {@code next} unless a newer batch is installed already; returns whether it did. Fails
     * when the layer closed meanwhile: a recompute that caught up just before close() is no longer among those
     * close() stops, and would change the closed layer's view after close() returned.
     */
    private synchronized boolean installIfNewer(BatchView<V> next) {
        if (closed) {
            throw new CancellationException("serving layer '" + name + "' was closed before the batch view covering "
                    + next.covers() + " was installed");
        }
        if (isOlderThanInstalled(next)) {
            log.info("serving layer '{}': batch covering {} finished after a newer one ({}); not installed", name,
                    next.covers(), batch.covers());
            return false;
        }
        install(next);
        return true;
    }

    private void install(BatchView<V> next) {
        // Refold before changing anything: a fold that throws now leaves the installed batch and real-time view
        // as they were (a new batch beside the old real-time view would count the events both hold twice).
        List<Positioned<E>> rest = new ArrayList<>();
        V refolded = empty.get();
        for (Positioned<E> e : uncovered) {
            if (e.offset() >= next.coveredUpTo(e.partition())) {
                rest.add(e);
                refolded = fold.apply(refolded, e.event());
            }
        }
        batch = next;
        uncovered.clear();
        uncovered.addAll(rest);
        realtime = refolded;
        log.info("serving layer '{}' installed a batch view covering {}; {} real-time events remain", name, next.covers(), uncovered.size());
    }

    /**
     * Recomputes the batch view from the whole log as it is now: a bounded replay under a new consumer
     * group folds every event below the current end offsets, then the result is installed. Runs may
     * overlap (a slow run started earlier may finish after a later one): a result older than the installed
     * batch is then dropped, never installed. Completes with the computed batch view. Queries are answered while it
     * asks the transport whether its new group is unused (on a broker, admin requests).
     */
    public CompletionStage<BatchView<V>> recomputeBatch() {
        String group;
        do {
            synchronized (this) {
                if (closed) {
                    return CompletableFuture.failedFuture(new CancellationException("serving layer '" + name + "' is closed"));
                }
                group = name + ".batch-" + (++batchRuns);
            }
            // Outside the lock: on a broker these are admin requests (up to the request timeout while offsets are
            // pending in a transaction), during which queries and the real-time side, which take the lock, would wait.
        } while (!Reprocessor.isUnused(bus.transport(), group, List.of(topic)));
        // partitions may be handled on different threads; a lock (not updateAndGet, which may retry the
        // fold) serialises the application's fold
        AtomicReference<V> acc = new AtomicReference<>(empty.get());
        // per partition, the offset after the last event folded: a record delivered again is not folded twice
        Map<Integer, Long> batchFolded = new java.util.HashMap<>();
        Replay replay = Reprocessor.builder(bus).mode(Reprocessor.Mode.UNTIL_TARGET)
                .on(topic, eventType, (event, ctx) -> {
                    synchronized (acc) {
                        if (ctx.offset() < batchFolded.getOrDefault(ctx.partition(), 0L)) {
                            return;
                        }
                        acc.set(fold.apply(acc.get(), event));
                        batchFolded.put(ctx.partition(), ctx.offset() + 1);
                    }
                })
                .build().start(group);
        boolean closedWhileStarting;
        synchronized (this) {
            closedWhileStarting = closed;
            if (!closedWhileStarting) {
                recomputing.add(replay); // close() sets closed under the lock, then stops those it finds here
            }
        }
        if (closedWhileStarting) {
            // Outside the lock: a replay's close waits for its consumer threads and for its check of committed offsets
            // in progress (an Admin request on a broker), during which queries and the real-time side would wait too.
            replay.close();
        }
        return replay.caughtUp().whenComplete((progress, error) -> recomputing.remove(replay)).thenApply(progress -> {
            V view;
            synchronized (acc) {
                view = acc.get();
            }
            BatchView<V> computed = new BatchView<>(view, progress.target().getOrDefault(topic, Map.of()),
                    bus.scheduler().clock().instant());
            installIfNewer(computed);
            return computed;
        });
    }

    /** The merged view: {@code merge(batch view, real-time view)}. */
    public synchronized V query() {
        return merge.apply(batch.view(), realtime);
    }

    /** The merged view together with the exact log position it covers, taken atomically. */
    public synchronized Answer<V> answer() {
        return new Answer<>(query(), position());
    }

    /**
     * A merged view and the position it covers: per partition, every event below the offset and none above.
     *
     * @param view     the merged view
     * @param position per partition, the next offset not included
     * @param <V>      the view type
     */
    public record Answer<V>(V view, Map<Integer, Long> position) {
        public Answer {
            position = java.util.Collections.unmodifiableMap(new TreeMap<>(position));
        }
    }

    /** The batch view in use. */
    public synchronized BatchView<V> batchView() {
        return batch;
    }

    /** The real-time view alone (events after the batch position). */
    public synchronized V realtimeView() {
        return realtime;
    }

    /** How many real-time events wait for a batch view to cover them. */
    public synchronized int uncoveredEvents() {
        return uncovered.size();
    }

    /** Per partition, the next offset not yet in the merged view: it covers exactly the events below. */
    public synchronized Map<Integer, Long> position() {
        Map<Integer, Long> position = new TreeMap<>(batch.covers());
        realtimeReached.forEach((p, o) -> position.merge(p, o, Math::max));
        return position;
    }

    /**
     * Stops the real-time subscription and any batch recompute still running: its replay is closed and its
     * stage fails with a {@link CancellationException}, as does a recompute asked of a closed layer, or one that
     * caught up but had not installed its result yet (it installs nothing); {@link #installBatch} is refused from then
     * on. The views stay queryable; an event the real-time side was handling as close began is counted. During a {@link #start()}
     * it waits for the subscription being made, so nothing is folded after it returns.
     */
    @Override
    public void close() {
        synchronized (this) {
            closed = true; // under the monitor: a recompute checks it there before it installs or registers its replay
        }
        // Under the lifecycle lock only: a start() under way finishes making its subscription first, and the
        // subscription's close waits for its handler, which may be waiting for the layer's monitor to fold.
        synchronized (lifecycle) {
            Subscription realtimeSide = subscription;
            subscription = null; // closed once, by the first close()
            if (realtimeSide != null) {
                realtimeSide.close();
            }
        }
        for (Replay replay : List.copyOf(recomputing)) {
            replay.close();
        }
        recomputing.clear();
    }

    private record Positioned<E>(int partition, long offset, E event) {
    }

    /**
     * Builds a {@link ServingLayer}; not thread-safe.
     *
     * @param <E> the event type
     * @param <V> the view type
     */
    public static final class Builder<E, V> {
        private final EventBus bus;
        private final String name;
        private final String topic;
        private final Class<E> eventType;
        private Supplier<V> empty;
        private BiFunction<V, E, V> fold;
        private BinaryOperator<V> merge;

        private Builder(EventBus bus, String name, String topic, Class<E> eventType) {
            this.bus = Objects.requireNonNull(bus, "bus");
            ConfigurationException.require(name != null && !name.isBlank(), "serving layer name must not be blank, but was '%s'", name);
            this.name = name;
            this.topic = TopicPattern.requireTopicName(topic);
            this.eventType = Objects.requireNonNull(eventType, "eventType");
        }

        /** The empty view and how one event changes a view (returning a new view). */
        @SuppressWarnings("unchecked")
        public <W> Builder<E, W> view(Supplier<W> emptyView, BiFunction<W, E, W> foldEvent) {
            Builder<E, W> self = (Builder<E, W>) this;
            self.empty = Objects.requireNonNull(emptyView, "emptyView");
            self.fold = Objects.requireNonNull(foldEvent, "foldEvent");
            return self;
        }

        /** How a batch view and a real-time view combine into the answer. */
        public Builder<E, V> merge(BinaryOperator<V> mergeViews) {
            this.merge = Objects.requireNonNull(mergeViews, "mergeViews");
            return this;
        }

        public ServingLayer<E, V> build() {
            ConfigurationException.require(empty != null && fold != null, "serving layer '%s' needs view(empty, fold)", name);
            ConfigurationException.require(merge != null, "serving layer '%s' needs merge(...)", name);
            return new ServingLayer<>(this);
        }
    }
}
