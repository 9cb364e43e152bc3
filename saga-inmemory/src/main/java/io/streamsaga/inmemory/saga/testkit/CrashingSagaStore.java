package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import io.streamsaga.saga.spi.SagaStore;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link SagaStore} decorator that "kills the process" at its {@code n}-th write: right after it (the
 * write is durable in the delegate: whatever the engine would do next never happens) or right before it
 * (the write is lost: the action the engine just ran happened but its outcome was never recorded, so
 * recovery runs it again and the application's idempotency key must make that harmless). Then
 * {@link SimulatedCrash} is thrown, and every later call throws too (a dead process does nothing more): each
 * tagged as this store's, so that the test kit tells them from one the application's code throws.
 * A fresh orchestrator over the delegate then recovers. Thread-safe.
 *
 * <p>It is a {@link NodeRegistry} too, over a delegate that is one (InMemorySagaStore, JdbcSagaStore), so that a node
 * of a cluster with saga ownership can die mid-saga: once crashed it writes no heartbeat and removes none (a dead
 * process does neither; its close() neither), so the other nodes adopt its sagas once its lease ran out. Saga
 * ownership over it with a delegate that is no NodeRegistry fails the orchestrator's {@code build()} with a
 * {@link ConfigurationException} naming the delegate.
 */
public final class CrashingSagaStore implements SagaStore, NodeRegistry {
    private final SagaStore delegate;
    private final int crashAfterWrite;
    private final boolean beforeWrite;
    private final AtomicInteger writes = new AtomicInteger();
    /** What each successful write stored, in order (see {@link #written()}). */
    private final List<String> written = new CopyOnWriteArrayList<>();
    private volatile boolean crashed;
    /** {@link #written()} at the crash, the write lost by a crash before it included; null before the crash. */
    private volatile List<String> writtenUntilCrash;

    /**
     * @param delegate        the durable store
     * @param crashAfterWrite the write after which to crash (1 = right after the saga's start is stored);
     *                        0 or less never crashes (the store only counts writes)
     */
    public CrashingSagaStore(SagaStore delegate, int crashAfterWrite) {
        this(delegate, crashAfterWrite, false);
    }

    /**
     * @param delegate    the durable store
     * @param crashAt     the write at which to crash (1 = the saga's start); 0 or less never crashes
     * @param beforeWrite crash before that write reaches the delegate instead of right after it
     */
    public CrashingSagaStore(SagaStore delegate, int crashAt, boolean beforeWrite) {
        this.delegate = delegate;
        this.crashAfterWrite = crashAt;
        this.beforeWrite = beforeWrite;
    }

    /** Whether the simulated crash happened. */
    public boolean crashed() {
        return crashed;
    }

    /**
     * Whether this store threw {@code crash} (its crash point, or a call after it): the kit recovers from these
     * only, never from a {@link SimulatedCrash} the application's code throws. The kit's own: not public.
     */
    boolean threw(SimulatedCrash crash) {
        return crash.thrownBy(this);
    }

    /** Successful writes so far. */
    public int writes() {
        return writes.get();
    }

    /**
     * What each successful write stored, in order: its transitions as {@code TYPE step, attempt n} (a batch's joined by
     * {@code "; "}; a store without history, given none, its status). The crash explorer numbers crash points by these
     * and tells two runs' identical prefixes by them. The kit's own: not public.
     */
    List<String> written() {
        return List.copyOf(written);
    }

    /**
     * The writes the run made up to its crash point, in {@link #written()}'s form: those stored, the one at which it
     * crashed included (for a crash before it, the write the crash lost); empty when it did not crash. The crash
     * explorer checks by it that a crash run crashed after the same writes as the run it named the crash point from.
     */
    List<String> writtenUntilCrash() {
        List<String> untilCrash = writtenUntilCrash;
        return untilCrash == null ? List.of() : untilCrash;
    }

    private void checkAlive() {
        if (crashed) {
            throw new SimulatedCrash("the process crashed earlier (after write " + crashAfterWrite + ")", this);
        }
    }

    private void beforeWrite(SagaTransition transition) {
        beforeWrite(what(transition), stored(transition));
    }

    private void afterWrite(SagaTransition transition) {
        written.add(stored(transition));
        afterWrite(what(transition));
    }

    /** {@code entry}: the write's entry in {@link #written()}, kept as the lost write when the crash comes before it. */
    private void beforeWrite(String what, String entry) {
        if (beforeWrite && writes.get() + 1 == crashAfterWrite) {
            List<String> untilCrash = new ArrayList<>(written);
            untilCrash.add(entry);
            writtenUntilCrash = List.copyOf(untilCrash);
            crashed = true;
            throw new SimulatedCrash("simulated crash right before write " + crashAfterWrite + " (" + what + ")", this);
        }
    }

    private void afterWrite(String what) {
        if (writes.incrementAndGet() == crashAfterWrite && !beforeWrite) {
            writtenUntilCrash = List.copyOf(written);
            crashed = true;
            throw new SimulatedCrash("simulated crash right after write " + crashAfterWrite + " (" + what + ")", this);
        }
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        checkAlive();
        beforeWrite(transition);
        delegate.insert(instance, transition);
        afterWrite(transition);
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        checkAlive();
        beforeWrite(transition);
        delegate.update(updated, transition);
        afterWrite(transition);
    }

    @Override
    public boolean writesTransitionBatches() {
        return delegate.writesTransitionBatches();
    }

    @Override
    public boolean keepsHistory() {
        return delegate.keepsHistory();
    }

    @Override
    public void insertAll(SagaInstance instance, List<SagaTransition> transitions) {
        checkAlive();
        String last = last(instance, transitions);
        String entry = stored(instance, transitions);
        beforeWrite(last, entry);
        delegate.insertAll(instance, transitions);
        written.add(entry);
        afterWrite(last);
    }

    @Override
    public void updateAll(SagaInstance updated, List<SagaTransition> transitions) {
        checkAlive();
        String last = last(updated, transitions);
        String entry = stored(updated, transitions);
        beforeWrite(last, entry);
        delegate.updateAll(updated, transitions);
        written.add(entry);
        afterWrite(last);
    }

    /** What the write is, to name the crash: its last transition, or (a store without history is given none) its status. */
    private static String last(SagaInstance instance, List<SagaTransition> transitions) {
        return transitions.isEmpty() ? "a write of status " + instance.status() : what(transitions.get(transitions.size() - 1));
    }

    /** A write's entry in {@link #written()}: its transitions, or its status when it has none. */
    private static String stored(SagaInstance instance, List<SagaTransition> transitions) {
        return transitions.isEmpty() ? "status " + instance.status()
                : String.join("; ", transitions.stream().map(CrashingSagaStore::stored).toList());
    }

    /** A transition as {@link #written()} lists it: what it is and its attempt, not its time or detail. */
    private static String stored(SagaTransition transition) {
        return what(transition) + (transition.step() == null ? "" : ", attempt " + transition.attempt());
    }

    private static String what(SagaTransition transition) {
        return transition.type() + (transition.step() == null ? "" : " " + transition.step());
    }

    @Override
    public boolean storesOutgoingMessages() {
        return delegate.storesOutgoingMessages();
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition, List<Message> outgoing) {
        checkAlive();
        beforeWrite(transition);
        delegate.insert(instance, transition, outgoing);
        afterWrite(transition);
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition, List<Message> outgoing) {
        checkAlive();
        beforeWrite(transition);
        delegate.update(updated, transition, outgoing);
        afterWrite(transition);
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        checkAlive();
        return delegate.find(sagaId);
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        checkAlive();
        return delegate.findByBusinessKey(businessKey);
    }

    @Override
    public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
        checkAlive();
        return delegate.findByStatus(statuses);
    }

    @Override
    public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
        checkAlive();
        return delegate.findRecoveryCandidates(query);
    }

    @Override
    public List<SagaInstance> findPage(SagaQuery query) {
        checkAlive();
        return delegate.findPage(query);
    }

    @Override
    public Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses) {
        checkAlive();
        return delegate.countByStatus(statuses);
    }

    @Override
    public Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses) {
        checkAlive();
        return delegate.countBySagaAndStatus(statuses);
    }

    @Override
    public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
        checkAlive();
        return delegate.findActiveCreatedBefore(createdBefore);
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        checkAlive();
        return delegate.history(sagaId);
    }

    @Override
    public int deleteFinishedBefore(Instant cutoff) {
        checkAlive();
        return delegate.deleteFinishedBefore(cutoff);
    }

    @Override
    public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
        checkAlive();
        return delegate.deleteFinishedBefore(cutoff, maxSagas);
    }

    /** The delegate as a NodeRegistry: saga ownership over this store needs one. */
    private NodeRegistry registry() {
        if (delegate instanceof NodeRegistry registry) {
            return registry;
        }
        throw new ConfigurationException("saga ownership needs a store that is a NodeRegistry, but the delegate of this "
                + "CrashingSagaStore, " + delegate.getClass().getName() + ", is not");
    }

    @Override
    public void heartbeat(String nodeId, Instant at) {
        NodeRegistry registry = registry();
        if (!crashed) { // a dead process writes no heartbeat: the other nodes' lease on it runs out
            registry.heartbeat(nodeId, at);
        }
    }

    @Override
    public void heartbeat(String nodeId, Instant at, Map<String, Set<Integer>> definitions) {
        NodeRegistry registry = registry();
        if (!crashed) {
            registry.heartbeat(nodeId, at, definitions);
        }
    }

    @Override
    public Map<String, NodeHeartbeat> nodes() {
        checkAlive();
        return registry().nodes();
    }

    @Override
    public Map<String, Instant> heartbeats() {
        checkAlive();
        return registry().heartbeats();
    }

    @Override
    public void remove(String nodeId) {
        NodeRegistry registry = registry();
        if (!crashed) { // nor does it remove its heartbeat (close() after the crash, as a graceful close would)
            registry.remove(nodeId);
        }
    }

    @Override
    public boolean remove(String nodeId, Instant at) {
        checkAlive();
        return registry().remove(nodeId, at);
    }
}
