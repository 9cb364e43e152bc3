package io.streamsaga.strangler;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.strangler.internal.BoundedSeenSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiFunction;

/**
 * Copies legacy events (such as {@code order-created-legacy}) into the new system, idempotently: the bus
 * delivers at least once and the legacy system may emit the same event twice, so every event is written
 * only if its deduplication key (by default the message id) was not synced before. The key is remembered
 * only after the sink succeeded, so a failed write is retried rather than skipped.
 *
 * <p>The memory of synced keys is a bounded in-process set (least recently seen evicted), which covers
 * redeliveries and near duplicates but not a duplicate arriving after {@code seenCapacity} other events or
 * after a restart; for those the sink should also be idempotent on its business key (an upsert).
 * {@link #evictions()} counts the forgotten keys. Thread-safe.
 *
 * @param <E> the legacy event type
 */
public final class LegacyEventSync<E> implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LegacyEventSync.class);
    /** Counter of skipped duplicates (tag {@code topic}). */
    public static final String DUPLICATES_COUNTER = "legacy_sync_duplicates";

    private final EventBus bus;
    private final String topic;
    private final String group;
    private final Class<E> type;
    private final LegacySink<E> sink;
    private final BiFunction<E, DeliveryContext, String> keyOf;
    private final BoundedSeenSet seen;
    private final StartPosition start;
    private final AtomicLong synced = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private Subscription subscription;
    /** Set by close(): a start() afterwards would subscribe with nothing left to close the subscription. */
    private boolean closed;

    private LegacyEventSync(Builder<E> builder) {
        this.bus = builder.bus;
        this.topic = builder.topic;
        this.group = builder.group;
        this.type = builder.type;
        this.sink = builder.sink;
        this.keyOf = builder.keyOf;
        this.seen = new BoundedSeenSet(builder.seenCapacity);
        this.start = builder.start;
    }

    /** Starts a sync of {@code topic} (e.g. {@code order-created-legacy}) into {@code sink}. */
    public static <E> Builder<E> builder(EventBus bus, String topic, Class<E> type, LegacySink<E> sink) {
        return new Builder<>(bus, topic, type, sink);
    }

    /**
     * Subscribes; returns this.
     *
     * @throws ConfigurationException when already started, or closed (its subscription would never be closed)
     */
    public synchronized LegacyEventSync<E> start() {
        ConfigurationException.require(!closed, "legacy sync of '%s' is closed", topic);
        ConfigurationException.require(subscription == null, "legacy sync of '%s' is already started", topic);
        subscription = bus.subscribe(group, topic, type, SubscriptionOptions.defaults().withStart(start), this::sync);
        return this;
    }

    private void sync(E event, DeliveryContext ctx) throws Exception {
        String key = keyOf.apply(event, ctx);
        ConfigurationException.require(key != null, "legacy event %s has no deduplication key", ctx.message());
        // one delivery per partition at a time and a key always maps to one partition when it is the
        // message key; for other keys the check-then-add window is as wide as one sink call
        if (seen.contains(key)) {
            duplicates.incrementAndGet();
            bus.metrics().increment(DUPLICATES_COUNTER, Map.of("topic", topic));
            log.debug("legacy event {} already synced, skipped", key);
            return;
        }
        sink.accept(event);
        seen.add(key);
        synced.incrementAndGet();
    }

    /** Events written to the new system. */
    public long synced() {
        return synced.get();
    }

    /** Duplicates recognised and skipped. */
    public long duplicatesSkipped() {
        return duplicates.get();
    }

    /** Keys forgotten because the seen-set was full. */
    public long evictions() {
        return seen.evictions();
    }

    /** Closes the subscription, if started; a closed sync refuses {@link #start()}. */
    @Override
    public synchronized void close() {
        closed = true;
        if (subscription != null) {
            subscription.close();
        }
    }

    /**
     * Builds a {@link LegacyEventSync}; not thread-safe.
     *
     * @param <E> the legacy event type
     */
    public static final class Builder<E> {
        private final EventBus bus;
        private final String topic;
        private final Class<E> type;
        private final LegacySink<E> sink;
        private String group = "legacy-sync";
        private BiFunction<E, DeliveryContext, String> keyOf = (event, ctx) -> ctx.message().id();
        private int seenCapacity = 100_000;
        private StartPosition start = StartPosition.EARLIEST;

        private Builder(EventBus bus, String topic, Class<E> type, LegacySink<E> sink) {
            this.bus = Objects.requireNonNull(bus, "bus");
            this.topic = TopicPattern.requireTopicName(topic);
            this.type = Objects.requireNonNull(type, "type");
            this.sink = Objects.requireNonNull(sink, "sink");
        }

        /** The consumer group; default {@code legacy-sync}. */
        public Builder<E> group(String value) {
            ConfigurationException.require(value != null && !value.isBlank(), "group must not be blank, but was '%s'", value);
            this.group = value;
            return this;
        }

        /** The deduplication key of an event; default the message id. */
        public Builder<E> dedupeBy(BiFunction<E, DeliveryContext, String> value) {
            this.keyOf = Objects.requireNonNull(value, "dedupeBy");
            return this;
        }

        /** How many synced keys are remembered; default 100,000. */
        public Builder<E> seenCapacity(int value) {
            ConfigurationException.require(value >= 1, "seenCapacity must be 1 or more, but was %s", value);
            this.seenCapacity = value;
            return this;
        }

        /** Where a new group starts; default the earliest position (sync the legacy history too). */
        public Builder<E> start(StartPosition value) {
            this.start = Objects.requireNonNull(value, "start");
            return this;
        }

        public LegacyEventSync<E> build() {
            return new LegacyEventSync<>(this);
        }
    }
}
