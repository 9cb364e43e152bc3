package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.spi.StoredKeys;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * An {@link AggregationStore} in the heap: groups survive a new aggregator instance in the same process
 * (what tests use to model a restart) but not the process. Versioned saves are atomic per group through
 * {@link ConcurrentMap#compute}, the stored group being the one written over only when opened at the same time (a
 * key's next group counts its versions from 1 again); an {@link #append} checks only the appended part, so adding a part costs the same
 * whatever the group's size. An aggregator name or group key holding U+0000 or a lone surrogate or longer than its
 * limit ({@link StoredKeys#MAX_AGGREGATOR_NAME_LENGTH}, {@link StoredKeys#MAX_GROUP_KEY_LENGTH}), and a part's
 * header name holding a lone surrogate, are refused by every operation, as a durable store refuses them
 * ({@link StoredKeys}). Thread-safe.
 */
public final class InMemoryAggregationStore implements AggregationStore {
    private final ConcurrentMap<GroupId, AggregationGroup> groups = new ConcurrentHashMap<>();

    @Override
    public Optional<AggregationGroup> find(String aggregator, String key) {
        requireStorable(aggregator, key);
        return Optional.ofNullable(groups.get(new GroupId(aggregator, key)));
    }

    @Override
    public boolean save(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        group.parts().forEach(InMemoryAggregationStore::requireStorableHeaders);
        return put(group);
    }

    /**
     * {@inheritDoc} Checks the appended part only (the others were checked when they were stored) and keeps the group
     * as given: a cost independent of the group's size.
     */
    @Override
    public boolean append(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        if (group.size() > 0) {
            requireStorableHeaders(group.parts().get(group.size() - 1));
        }
        return put(group);
    }

    private static void requireStorableHeaders(AggregatedPart part) {
        for (String name : part.headers().keySet()) {
            int lone = StoredKeys.firstLoneSurrogate(name);
            if (lone >= 0) {
                throw new ConfigurationException(String.format("header name must not contain a lone surrogate"
                        + " (U+%04X at index %d, not half of a pair: malformed UTF-16, which JSON cannot read back in"
                        + " a name) of an aggregation part, but was %s", (int) name.charAt(lone), lone,
                        StreamSagaException.quote(name)));
            }
        }
    }

    private boolean put(AggregationGroup group) {
        boolean[] saved = new boolean[1];
        groups.compute(new GroupId(group.aggregator(), group.key()), (id, stored) -> {
            long storedVersion = stored == null ? 0 : stored.version();
            // a key's next group counts from 1 again: a version met again is another group's unless opened at once
            if (group.version() != storedVersion + 1 || stored != null && !stored.createdAt().equals(group.createdAt())) {
                return stored;
            }
            saved[0] = true;
            return group;
        });
        return saved[0];
    }

    @Override
    public boolean delete(String aggregator, String key, long version) {
        requireStorable(aggregator, key);
        boolean[] deleted = new boolean[1];
        groups.computeIfPresent(new GroupId(aggregator, key), (id, stored) -> {
            if (stored.version() != version) {
                return stored;
            }
            deleted[0] = true;
            return null;
        });
        return deleted[0];
    }

    /** {@inheritDoc} The stored group must be {@code group}: its version, and opened at its time. */
    @Override
    public boolean delete(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        requireStorable(group.aggregator(), group.key());
        boolean[] deleted = new boolean[1];
        groups.computeIfPresent(new GroupId(group.aggregator(), group.key()), (id, stored) -> {
            if (stored.version() != group.version() || !stored.createdAt().equals(group.createdAt())) {
                return stored;
            }
            deleted[0] = true;
            return null;
        });
        return deleted[0];
    }

    @Override
    public List<AggregationGroup> withDeadlines(String aggregator) {
        StoredKeys.requireStorable(aggregator, StoredKeys.MAX_AGGREGATOR_NAME_LENGTH, "aggregator name");
        return groups.values().stream()
                .filter(g -> g.aggregator().equals(aggregator) && g.deadline() != null)
                .toList();
    }

    /** Refuses what a durable store cannot keep ({@link StoredKeys}), so that a test here fails as production would. */
    private static void requireStorable(String aggregator, String key) {
        StoredKeys.requireStorable(aggregator, StoredKeys.MAX_AGGREGATOR_NAME_LENGTH, "aggregator name");
        StoredKeys.requireStorable(key, StoredKeys.MAX_GROUP_KEY_LENGTH, "group key");
    }

    /** How many groups (open or tombstones) are stored. */
    public int size() {
        return groups.size();
    }

    private record GroupId(String aggregator, String key) {
    }
}
