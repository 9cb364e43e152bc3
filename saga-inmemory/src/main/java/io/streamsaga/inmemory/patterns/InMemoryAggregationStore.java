package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.spi.AggregationStore;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * An {@link AggregationStore} in the heap: groups survive a new aggregator instance in the same process
 * (what tests use to model a restart) but not the process. Versioned saves are atomic per group through
 * {@link ConcurrentMap#compute}. Thread-safe.
 */
public final class InMemoryAggregationStore implements AggregationStore {
    private final ConcurrentMap<GroupId, AggregationGroup> groups = new ConcurrentHashMap<>();

    @Override
    public Optional<AggregationGroup> find(String aggregator, String key) {
        return Optional.ofNullable(groups.get(new GroupId(aggregator, key)));
    }

    @Override
    public boolean save(AggregationGroup group) {
        Objects.requireNonNull(group, "group");
        boolean[] saved = new boolean[1];
        groups.compute(new GroupId(group.aggregator(), group.key()), (id, stored) -> {
            long storedVersion = stored == null ? 0 : stored.version();
            if (group.version() != storedVersion + 1) {
                return stored;
            }
            saved[0] = true;
            return group;
        });
        return saved[0];
    }

    @Override
    public boolean delete(String aggregator, String key, long version) {
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

    @Override
    public List<AggregationGroup> withDeadlines(String aggregator) {
        return groups.values().stream()
                .filter(g -> g.aggregator().equals(aggregator) && g.deadline() != null)
                .toList();
    }

    /** How many groups (open or tombstones) are stored. */
    public int size() {
        return groups.size();
    }

    private record GroupId(String aggregator, String key) {
    }
}
