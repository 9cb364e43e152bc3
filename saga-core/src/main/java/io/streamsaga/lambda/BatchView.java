package io.streamsaga.lambda;

import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The result of a batch computation over the log, with the exact log position it covers: for each
 * partition, the offset of the first event it did <em>not</em> include. The real-time side of a
 * {@link ServingLayer} counts only events at or after that position, so nothing is counted twice.
 * Immutable when {@code V} is.
 *
 * @param view       the computed view
 * @param covers     per partition, the next offset after the last event included
 * @param computedAt when the batch finished
 * @param <V>        the view type
 */
public record BatchView<V>(V view, Map<Integer, Long> covers, Instant computedAt) {
    public BatchView {
        Objects.requireNonNull(view, "view");
        covers = java.util.Collections.unmodifiableMap(new TreeMap<>(covers));
        Objects.requireNonNull(computedAt, "computedAt");
        covers.forEach((partition, offset) -> {
            if (offset < 0) {
                throw new IllegalArgumentException("covered offset must be 0 or more, but was " + offset + " for partition " + partition);
            }
        });
    }

    /** The next offset not covered in {@code partition}; 0 when the batch saw none of it. */
    public long coveredUpTo(int partition) {
        return covers.getOrDefault(partition, 0L);
    }
}
