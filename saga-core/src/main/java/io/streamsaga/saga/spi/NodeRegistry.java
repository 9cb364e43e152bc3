package io.streamsaga.saga.spi;

import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.Collections;
import java.util.Objects;

/**
 * Where the orchestrators (nodes) sharing one {@link SagaStore} record that they are alive, for saga ownership
 * ({@code SagaOrchestrator.Builder#ownership}): each node writes its heartbeat once per heartbeat interval (one
 * write per node, none per saga), and a recovering node adopts the unfinished sagas of a node whose last
 * heartbeat is older than the lease timeout, or absent (the node closed and removed it, or a recovery removed it
 * once it was older than the lease: {@link #remove(String, Instant)}; both are read the same way).
 *
 * <p>A store implements this next to {@link SagaStore} (the orchestrator uses the store as its registry), so
 * the heartbeats live where the sagas do. Times are the writing node's scheduler clock: the reader compares them
 * with its own, so the lease timeout must exceed the clock skew between the nodes. Implementations must be
 * thread-safe and pass the registry tests of {@code SagaStoreContractTest} from saga-core's test-jar.
 *
 * <p>With its heartbeat a node advertises the saga definition versions it can run ({@link #heartbeat(String,
 * Instant, Map)}), so that a node does not start a saga of a version that another live node, which may take its
 * replies, lacks (a rolling deploy; see docs/sagas.md, "Rolling deploys"). A registry that cannot keep them
 * implements only the two-argument {@link #heartbeat(String, Instant)}: its {@link #nodes()} then advertises
 * nothing, and the orchestrators over it start every version as they would without the guard.
 */
public interface NodeRegistry {

    /**
     * A node's last heartbeat and what it advertised with it. Immutable.
     *
     * @param at          the time of its last heartbeat
     * @param definitions the saga definition versions it can run, by saga name (copied, sorted); null when the node
     *                    advertised none (its heartbeat came through {@link #heartbeat(String, Instant)}: a registry
     *                    or a library version that does not advertise), which the start guard takes as "unknown"
     */
    record NodeHeartbeat(Instant at, Map<String, Set<Integer>> definitions) {
        public NodeHeartbeat {
            Objects.requireNonNull(at, "at");
            definitions = definitions == null ? null : copy(definitions);
        }

        /** A sorted, immutable copy, so that two advertisements of the same versions are equal whatever their order. */
        private static Map<String, Set<Integer>> copy(Map<String, Set<Integer>> definitions) {
            TreeMap<String, Set<Integer>> sorted = new TreeMap<>();
            for (Map.Entry<String, Set<Integer>> saga : definitions.entrySet()) {
                sorted.put(Objects.requireNonNull(saga.getKey(), "saga name"),
                        Collections.unmodifiableSortedSet(new TreeSet<>(saga.getValue())));
            }
            return Collections.unmodifiableSortedMap(sorted);
        }
    }

    /**
     * Records that node {@code nodeId} was alive at {@code at}, replacing its earlier heartbeat, and that it can run
     * the saga definition versions {@code definitions} (by saga name; replacing what it advertised before). The
     * default records the heartbeat only ({@link #heartbeat(String, Instant)}): a registry that cannot keep what a
     * node advertises leaves the start guard off.
     */
    default void heartbeat(String nodeId, Instant at, Map<String, Set<Integer>> definitions) {
        heartbeat(nodeId, at);
    }

    /**
     * The last heartbeat of every node that has one, by node id, with what it advertised (a snapshot). The default
     * reads {@link #heartbeats()}, advertising nothing for any node.
     */
    default Map<String, NodeHeartbeat> nodes() {
        return heartbeats().entrySet().stream().collect(Collectors.toUnmodifiableMap(Map.Entry::getKey,
                e -> new NodeHeartbeat(e.getValue(), null)));
    }

    /**
     * Records that node {@code nodeId} was alive at {@code at}, replacing its earlier heartbeat and advertising
     * nothing (its {@link NodeHeartbeat#definitions()} null).
     */
    void heartbeat(String nodeId, Instant at);

    /** The last heartbeat of every node that has one, by node id (a snapshot). */
    Map<String, Instant> heartbeats();

    /** Removes the heartbeat of node {@code nodeId} (it closed); nothing happens when it has none. */
    void remove(String nodeId);

    /**
     * Removes the heartbeat of node {@code nodeId} only while it still is {@code at} (atomically: a compare and
     * delete), and tells whether it did. A recovery removes so the heartbeat of a node it found older than the lease
     * (a node that crashed and never came back); a node that wrote a newer one since (awake after a pause) keeps it.
     * {@code at} is a time as {@link #heartbeats()} read it or as {@link #heartbeat} was given it: a store keeping
     * coarser times (a database's microseconds) compares it rounded as it rounded the heartbeat it wrote.
     */
    boolean remove(String nodeId, Instant at);
}
