package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.spi.StoredKeys;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * A {@link PayloadStore} in the heap, for tests and single-process use. Each operation is atomic per
 * payload id ({@link ConcurrentMap#compute}). A holder holding U+0000 or a lone surrogate, or longer than
 * {@link StoredKeys#MAX_HOLDER_LENGTH}, is refused, as a durable store refuses it ({@link StoredKeys}). Thread-safe.
 */
public final class InMemoryPayloadStore implements PayloadStore {
    private final ConcurrentMap<String, Entry> payloads = new ConcurrentHashMap<>();

    @Override
    public void put(String id, byte[] content, String holder, Instant now) {
        PayloadReference.requireValidId(id);
        Objects.requireNonNull(content, "content");
        Objects.requireNonNull(holder, "holder");
        StoredKeys.requireStorable(holder, StoredKeys.MAX_HOLDER_LENGTH, "holder"); // as a durable store must: releasing by one then releases nothing
        payloads.compute(id, (key, current) -> {
            byte[] stored = current == null ? content.clone() : current.content;
            Set<String> holders = current == null ? ConcurrentHashMap.newKeySet() : current.holders;
            holders.add(holder);
            return new Entry(stored, holders, now);
        });
    }

    @Override
    public Optional<byte[]> get(String id) {
        PayloadReference.requireValidId(id);
        Entry entry = payloads.get(id);
        return entry == null ? Optional.empty() : Optional.of(entry.content.clone());
    }

    @Override
    public boolean release(String id, String holder) {
        PayloadReference.requireValidId(id);
        boolean[] deleted = new boolean[1];
        payloads.computeIfPresent(id, (key, current) -> {
            if (!current.holders.remove(holder) || !current.holders.isEmpty()) {
                return current;
            }
            deleted[0] = true;
            return null;
        });
        return deleted[0];
    }

    @Override
    public int deleteStoredBefore(Instant cutoff) {
        return deleteStored(cutoff, Integer.MAX_VALUE);
    }

    /** Deletes at most {@code maxPayloads} payloads last stored before {@code cutoff}, in no particular order. */
    @Override
    public int deleteStoredBefore(Instant cutoff, int maxPayloads) {
        ConfigurationException.require(maxPayloads > 0, "maxPayloads must be positive, but was %s", maxPayloads);
        return deleteStored(cutoff, maxPayloads);
    }

    private int deleteStored(Instant cutoff, int maxPayloads) {
        Objects.requireNonNull(cutoff, "cutoff");
        int[] deleted = new int[1];
        for (String id : payloads.keySet()) {
            if (deleted[0] == maxPayloads) {
                break;
            }
            payloads.computeIfPresent(id, (key, current) -> {
                if (current.storedAt.isBefore(cutoff)) {
                    deleted[0]++;
                    return null;
                }
                return current;
            });
        }
        return deleted[0];
    }

    /** How many payloads are stored. */
    public int size() {
        return payloads.size();
    }

    /**
     * Replaces the content stored under {@code id} (to simulate corruption in tests); returns whether it
     * was present.
     */
    public boolean overwrite(String id, byte[] content) {
        return payloads.computeIfPresent(id, (key, current) -> new Entry(content.clone(), current.holders, current.storedAt)) != null;
    }

    private record Entry(byte[] content, Set<String> holders, Instant storedAt) {
    }
}
