package io.streamsaga.strangler.internal;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ids most recently marked, at most {@code capacity}, least recently seen evicted first. Deliberately
 * small and private to the strangler's sync handler: a general, durable deduplication store belongs to the
 * patterns module. Thread-safe.
 */
public final class BoundedSeenSet {
    private final Map<String, Boolean> ids;
    private long evictions;

    public BoundedSeenSet(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be 1 or more, but was " + capacity);
        }
        this.ids = new LinkedHashMap<>(Math.min(capacity, 1024), 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
                boolean evict = size() > capacity;
                if (evict) {
                    evictions++;
                }
                return evict;
            }
        };
    }

    public synchronized boolean contains(String id) {
        return ids.get(id) != null;
    }

    public synchronized void add(String id) {
        ids.put(id, Boolean.TRUE);
    }

    public synchronized int size() {
        return ids.size();
    }

    public synchronized long evictions() {
        return evictions;
    }
}
