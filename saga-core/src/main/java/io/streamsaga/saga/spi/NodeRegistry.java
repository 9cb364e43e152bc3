package io.streamsaga.saga.spi;

import java.time.Instant;
import java.util.Map;

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
 */
public interface NodeRegistry {

    /** Records that node {@code nodeId} was alive at {@code at}, replacing its earlier heartbeat. */
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
