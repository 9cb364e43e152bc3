package io.streamsaga.saga.internal;

import io.streamsaga.saga.spi.NodeRegistry.NodeHeartbeat;

import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the other live nodes over the store advertised they can run, as one heartbeat read it (the start guard of
 * saga ownership). Immutable: a new one is read with each heartbeat, so that {@code start} reads no store.
 */
final class LiveDefinitions {
    /** No other live node that advertised what it runs: every version may start. */
    static final LiveDefinitions NONE = new LiveDefinitions(Map.of());

    /** The other live nodes that advertised something, by node id: what each advertised, by saga name. */
    private final Map<String, Map<String, Set<Integer>>> nodes;
    /** By saga name, the versions every one of {@link #nodes} has: one lookup per start. */
    private final Map<String, Set<Integer>> everywhere;

    private LiveDefinitions(Map<String, Map<String, Set<Integer>>> nodes) {
        this.nodes = Map.copyOf(nodes);
        Map<String, Set<Integer>> common = null;
        for (Map<String, Set<Integer>> advertised : nodes.values()) {
            if (common == null) {
                common = new HashMap<>();
                for (Map.Entry<String, Set<Integer>> saga : advertised.entrySet()) {
                    common.put(saga.getKey(), new HashSet<>(saga.getValue()));
                }
            } else {
                common.keySet().retainAll(advertised.keySet());
                for (Map.Entry<String, Set<Integer>> saga : common.entrySet()) {
                    saga.getValue().retainAll(advertised.get(saga.getKey()));
                }
            }
        }
        Map<String, Set<Integer>> copy = new HashMap<>();
        if (common != null) {
            for (Map.Entry<String, Set<Integer>> saga : common.entrySet()) {
                copy.put(saga.getKey(), Set.copyOf(saga.getValue()));
            }
        }
        this.everywhere = Map.copyOf(copy);
    }

    /**
     * The nodes of {@code heartbeats} but {@code self} whose heartbeat is after {@code leaseSince} and that advertised
     * at least one definition: one that advertised nothing (an earlier release, a registry that cannot keep it) is
     * unknown, and one that runs no saga subscribes to no reply.
     */
    static LiveDefinitions of(Map<String, NodeHeartbeat> heartbeats, String self, Instant leaseSince) {
        Map<String, Map<String, Set<Integer>>> live = new HashMap<>();
        heartbeats.forEach((node, heartbeat) -> {
            if (!node.equals(self) && heartbeat.at().isAfter(leaseSince) && heartbeat.definitions() != null
                    && !heartbeat.definitions().isEmpty()) {
                live.put(node, heartbeat.definitions());
            }
        });
        return live.isEmpty() ? NONE : new LiveDefinitions(live);
    }

    /** Whether every other live node has version {@code version} of saga {@code saga} (true when there is none). */
    boolean everywhere(String saga, int version) {
        if (nodes.isEmpty()) {
            return true;
        }
        Set<Integer> versions = everywhere.get(saga);
        return versions != null && versions.contains(version);
    }

    /** The other live nodes lacking that version, sorted. */
    List<String> lacking(String saga, int version) {
        return nodes.entrySet().stream()
                .filter(node -> !node.getValue().getOrDefault(saga, Set.of()).contains(version))
                .map(Map.Entry::getKey).sorted().toList();
    }
}
