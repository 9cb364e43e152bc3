package io.streamsaga.kappa;

import java.util.Map;
import java.util.TreeMap;

/**
 * How far a replay has come: per topic and partition, the position it must reach (the end offsets when it
 * started) and the position its consumer group has reached. Immutable.
 *
 * @param target  end offsets per topic and partition, taken when the replay started
 * @param reached the next offset to handle per topic and partition (committed, or handled when ahead)
 */
public record ReplayProgress(Map<String, Map<Integer, Long>> target, Map<String, Map<Integer, Long>> reached) {

    public ReplayProgress {
        target = deepCopy(target);
        reached = deepCopy(reached);
    }

    private static Map<String, Map<Integer, Long>> deepCopy(Map<String, Map<Integer, Long>> source) {
        Map<String, Map<Integer, Long>> copy = new TreeMap<>();
        source.forEach((topic, offsets) -> copy.put(topic, Map.copyOf(offsets)));
        return java.util.Collections.unmodifiableMap(copy);
    }

    /** Records to replay in total (counted from offset 0, so retention-trimmed records count as done). */
    public long total() {
        return target.values().stream().flatMap(m -> m.values().stream()).mapToLong(Long::longValue).sum();
    }

    /** Records replayed so far, capped at the target per partition. */
    public long done() {
        long done = 0;
        for (Map.Entry<String, Map<Integer, Long>> topic : target.entrySet()) {
            Map<Integer, Long> at = reached.getOrDefault(topic.getKey(), Map.of());
            for (Map.Entry<Integer, Long> partition : topic.getValue().entrySet()) {
                done += Math.min(partition.getValue(), at.getOrDefault(partition.getKey(), 0L));
            }
        }
        return done;
    }

    /** Between 0 and 1; 1 when there was nothing to replay. */
    public double fraction() {
        long total = total();
        return total == 0 ? 1.0 : (double) done() / total;
    }

    /** Whether every partition reached its target. */
    public boolean isComplete() {
        return done() == total();
    }

    @Override
    public String toString() {
        return String.format("%d/%d (%.1f%%)", done(), total(), fraction() * 100);
    }
}
