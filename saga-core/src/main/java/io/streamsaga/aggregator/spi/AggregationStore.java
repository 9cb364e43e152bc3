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
 * parts; {@link #append} is such a save too, of a group that gained one part, which a store may write alone (the
 * aggregator adds each arriving part with it, so that a group of n parts costs n part writes, not n whole groups).
 * Implementations are thread-safe; durable ones must keep that atomicity across processes. Every operation
 * refuses an aggregator name or group key holding U+0000 or a lone surrogate or longer than its limit
 * ({@link io.streamsaga.spi.StoredKeys#MAX_AGGREGATOR_NAME_LENGTH}, {@link io.streamsaga.spi.StoredKeys#MAX_GROUP_KEY_LENGTH}),
 * and {@link #save} and {@link #append} a
 * part's header name holding a lone surrogate, with an {@link io.streamsaga.ConfigurationException}, as a durable
 * store must ({@link io.streamsaga.spi.StoredKeys}).
 */
public interface AggregationStore {

    /** The group of {@code aggregator} with correlation {@code key}, if stored. */
    Optional<AggregationGroup> find(String aggregator, String key);

    /**
     * Stores {@code group} if the stored version is {@code group.version() - 1} (absent when it is 1) and, above 1, the
     * stored group is the same group, opened at {@code group.createdAt()} (a key's next group, once one was deleted,
     * counts its versions from 1 again); returns false and changes nothing otherwise. A store that keeps that time
     * coarser than an {@link java.time.Instant} (a TIMESTAMP column: microseconds) compares it as it keeps it: the
     * caller may pass the group it opened, with the clock's nanoseconds, not one read back.
     */
    boolean save(AggregationGroup group);

    /**
     * Stores {@code group}, the group stored at version {@code group.version() - 1} with one part appended (its last
     * part; its state and deadline may change too), if the stored version is still {@code group.version() - 1} (absent
     * when it is 1) of the same group, as {@link #save} checks; returns false and changes nothing otherwise. The caller built it from the group it read at that
     * version, so the parts before the last are the stored ones and a store may write only the new part and the
     * group's state: a cost of the size of that part, not of the group. The default saves the whole group ({@link #save}), which an application's own
     * store may keep.
     */
    default boolean append(AggregationGroup group) {
        return save(group);
    }

    /**
     * Deletes the group if its stored version is {@code version}; returns whether it did. It cannot tell a key's groups
     * apart (a key's next group, once one was deleted, counts its versions from 1 again): the aggregator deletes with
     * {@link #delete(AggregationGroup)}.
     */
    boolean delete(String aggregator, String key, long version);

    /**
     * Deletes {@code group} if the stored group is that group, opened at its {@link AggregationGroup#createdAt()}, at its
     * version; returns whether it did. A key's next group, once one was deleted, counts its versions from 1 again, so a
     * writer that read the earlier group and was held up meanwhile would otherwise delete the next group, its parts
     * unreleased; for the same reason {@link #save} and {@link #append} of a version above 1 store nothing over a group
     * opened at another time. The default, for a store written before this method, finds the stored group and deletes it
     * by version ({@link #delete(String, String, long)}) only when it is that group, opened at that time (compared with
     * {@link java.time.Instant#equals}: the aggregator passes a group it read): a store with one atomic delete should
     * override it, as the default leaves the next group's deletion open to a writer for the moment between its find and
     * its delete, rather than for the whole time the writer was held up.
     */
    default boolean delete(AggregationGroup group) {
        // by version alone, a writer held up since it read the earlier group would delete the key's next group
        Optional<AggregationGroup> stored = find(group.aggregator(), group.key());
        return stored.isPresent() && stored.get().version() == group.version()
                && stored.get().createdAt().equals(group.createdAt())
                && delete(group.aggregator(), group.key(), group.version());
    }

    /** Every stored group of {@code aggregator} with a non-null deadline (to re-arm after a restart). */
    List<AggregationGroup> withDeadlines(String aggregator);
}
