package io.streamsaga.aggregator.spi;

import io.streamsaga.aggregator.AggregationGroup;

import java.util.List;
import java.util.Optional;

/**
 * Keeps aggregation groups, their deadlines and versions, so that on a durable store a restarted (or
 * another) aggregator instance finds every open group and re-arms its timeout.
 *
 * <p>Writes are optimistic: {@link #save} stores a group only when its {@code version} is exactly one more
 * than the stored version (0 counting as absent), atomically, so concurrent writers never lose each other's
 * parts. Implementations are thread-safe; durable ones must keep that atomicity across processes. Every operation
 * refuses an aggregator name or group key holding U+0000 or a lone surrogate, and {@link #save} a part's header name
 * holding a lone surrogate, with an {@link io.streamsaga.ConfigurationException}, as a durable store must
 * ({@link io.streamsaga.spi.StoredKeys}).
 */
public interface AggregationStore {

    /** The group of {@code aggregator} with correlation {@code key}, if stored. */
    Optional<AggregationGroup> find(String aggregator, String key);

    /**
     * Stores {@code group} if the stored version is {@code group.version() - 1} (absent when it is 1);
     * returns false and changes nothing otherwise.
     */
    boolean save(AggregationGroup group);

    /** Deletes the group if its stored version is {@code version}; returns whether it did. */
    boolean delete(String aggregator, String key, long version);

    /** Every stored group of {@code aggregator} with a non-null deadline (to re-arm after a restart). */
    List<AggregationGroup> withDeadlines(String aggregator);
}
