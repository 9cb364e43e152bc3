package io.streamsaga.saga.internal;

import io.streamsaga.internal.bus.DefaultEventBus;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.codec.UnknownEventTypeException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDataUpcaster;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaDiagrams;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.Ownership;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaPage;
import io.streamsaga.saga.SagaPageRequest;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.SagaVersionNotDeployedException;
import io.streamsaga.internal.RetryJitter;
import io.streamsaga.internal.LogContext;
import io.streamsaga.internal.ScopedScheduler;
import io.streamsaga.internal.StampClock;
import io.streamsaga.internal.SystemScheduler;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.saga.StepRole;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.saga.spi.UnreadableSagaData;
import io.streamsaga.spi.StoredKeys;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Function;

import static io.streamsaga.StreamSagaException.quote;

/** The engine behind {@link SagaOrchestrator}: owns the runs this process drives. Thread-safe. */
public final class DefaultSagaOrchestrator implements SagaOrchestrator {
    private static final Logger log = LoggerFactory.getLogger(DefaultSagaOrchestrator.class);
    /** The most unfinished sagas (with their data) a recovery holds at a time: it reads them page by page. */
    static final int RECOVERY_PAGE = 500;
    /** Finished sagas deleted per batch of the scheduled retention purge, as the JDBC components' purges. */
    private static final int PURGE_BATCH = 500;

    private final Config config;
    private final SagaStore store;
    /** The store writes each transition's outgoing messages in the transition's transaction (an outbox). */
    private final boolean transactionalMessages;
    private final Scheduler scheduler;
    /** The scheduler created for this orchestrator (it was given none, nor a bus), closed by close(); else null. */
    private final SystemScheduler ownScheduler;
    private final Map<String, TreeMap<Integer, SagaDefinition<?>>> definitions = new ConcurrentHashMap<>();
    private final Map<String, SagaRun<?>> runs = new ConcurrentHashMap<>();
    /**
     * The runs a reply's arrival registered here (the saga was not driven here: a restart, another node's saga) that no
     * recovery has reported yet: nobody was told that this orchestrator drives them, so the first recovery that reads
     * the saga reports it resumed (RecoveryReport.resumed), as it does when it adopts the saga while the reply does.
     * Removed once reported or unregistered; empty on the common path.
     */
    private final Map<String, SagaRun<?>> adoptedByReplies = new ConcurrentHashMap<>();
    /** By definition identity: definitions are immutable and few. */
    private final Map<SagaDefinition<?>, StepStates> stepStates = new ConcurrentHashMap<>();
    private final Object subscriptionLock = new Object();
    private volatile Subscription replies;
    /** Set under subscriptionLock once shutDown() has read {@code replies}: a subscription made later would stay. */
    private boolean repliesClosed;
    private volatile boolean closed;
    /**
     * The cutoff of the scheduled retention purge's run in progress, null between runs, and what it deleted so far:
     * used by one batch at a time, each queued by the one before (Scheduler.repeat).
     */
    private Instant purgeCutoff;
    private int purgedInRun;
    /**
     * The backoff between the tries to resume a saga whose run a store failure stopped ({@link StoreFailureResume}): 1 s
     * doubling to 1 min, jittered by a fifth so that the sagas an outage stopped do not all try at once.
     */
    private static final RetryPolicy RESUME_BACKOFF = RetryPolicy.builder().maxAttempts(Integer.MAX_VALUE)
            .initialBackoff(Duration.ofSeconds(1)).multiplier(2).maxBackoff(Duration.ofMinutes(1)).jitter(0.2).build();
    /** By saga id, the resumptions of sagas whose run a store failure stopped, until each ends; cleared by close(). */
    private final Map<String, StoreFailureResume> resumes = new ConcurrentHashMap<>();
    /** The retention purge, the recovery sweeps and the heartbeat, each when configured; cancelled by close(). */
    private final List<Scheduler.Cancellable> repeating = new java.util.concurrent.CopyOnWriteArrayList<>();
    /**
     * The repeating timers (purge, recovery sweep, heartbeat) on the scheduler, which may be shared: close() cancels
     * those queued and waits for one running, so that none works after it returned.
     */
    private final ScopedScheduler repeatingScope;
    /**
     * Saga ids: a random prefix per orchestrator (62 bits, base 36) and a counter; UUID.randomUUID() per saga
     * would cost more than a local saga, and a short id hashes and stores for less.
     */
    private final String idPrefix = Long.toString(new java.security.SecureRandom().nextLong() >>> 2, 36) + "-";
    private final boolean batchesTransitions;
    /** The configuration's interceptors as an array: every action and compensation checks them. */
    private final SagaInterceptor[] interceptors;
    private final boolean observed;
    private final boolean recordsTransitions;
    /** Config.logContext: the saga's keys in the MDC while a run is driven ({@link io.streamsaga.internal.LogContext}). */
    private final boolean logContext;
    /** The executor of parallel members' synchronous actions when the configuration names none; started lazily. */
    private ExecutorService ownParallelExecutor;
    /** Transition times (a clock read costs about as much as a transition). */
    private final StampClock clock;
    private final java.util.concurrent.atomic.AtomicLong idSequence = new java.util.concurrent.atomic.AtomicLong();
    /** This node's id with saga ownership, stamped on every write ({@link SagaRun}'s snapshot); null without. */
    private final String nodeId;
    /** The store as the registry of the nodes' heartbeats with saga ownership; null without. */
    private final NodeRegistry registry;
    /** Serialises a heartbeat write with close()'s removal, so that no heartbeat is written after it. */
    private final Object heartbeatLock = new Object();
    /** The scheduler time of this node's last heartbeat written, with saga ownership. */
    private volatile Instant lastHeartbeat;
    /** With saga ownership and a version guard other than ALLOW: start() checks {@link #liveDefinitions}. */
    private final boolean guardsVersions;
    /** What the other live nodes advertised, read with each heartbeat of this node (start() reads no store). */
    private volatile LiveDefinitions liveDefinitions = LiveDefinitions.NONE;
    /** What start does with each guarded version registered here, as last logged ({@link #logGuardChanges}). */
    private Map<Guarded, Integer> lastGuarded = Map.of();

    public DefaultSagaOrchestrator(Config config) {
        this(config, null);
    }

    /**
     * {@code ownScheduler}: the configuration's scheduler when it was created for this orchestrator, which closes it on
     * {@link #close()}; null when the application gave it (or a bus).
     */
    public DefaultSagaOrchestrator(Config config, SystemScheduler ownScheduler) {
        // Before anything is written or armed (an own scheduler exists only without a bus, where this checks nothing).
        config.definitions().forEach(d -> requireCommandsAndRepliesCodable(config.bus(), d));
        this.config = config;
        this.ownScheduler = ownScheduler;
        this.store = config.store();
        this.transactionalMessages = store.storesOutgoingMessages();
        // A lifecycle event's id ends with its transition's version (SagaLifecycleEvent.messageId): one write must
        // emit at most one, so no batches with messages.
        this.batchesTransitions = store.writesTransitionBatches() && !transactionalMessages;
        this.observed = !config.listeners().isEmpty() || config.lifecycleTopic() != null;
        this.interceptors = config.interceptors().toArray(new SagaInterceptor[0]);
        this.recordsTransitions = !batchesTransitions || store.keepsHistory();
        this.logContext = config.logContext();
        this.scheduler = config.scheduler();
        this.repeatingScope = new ScopedScheduler(scheduler, "saga orchestrator");
        Ownership ownership = config.ownership();
        this.nodeId = ownership == null ? null : ownership.nodeId();
        this.registry = ownership == null ? null : (NodeRegistry) store;
        this.guardsVersions = ownership != null && config.versionGuard() != SagaOrchestrator.VersionGuard.ALLOW;
        // Before the first heartbeat, which advertises them (a map's puts: nothing to undo).
        config.definitions().forEach(this::register);
        if (registry != null) { // before any recover(), and before anything a failure here would leave running
            try {
                Instant at = scheduler.clock().instant();
                registry.heartbeat(nodeId, at, advertisedDefinitions());
                lastHeartbeat = at;
                // A node starting mid-deploy knows the others before its first start. Read after its heartbeat is
                // written: of two nodes building at once, one at least reads the other's.
                if (guardsVersions) {
                    liveDefinitions = readLiveDefinitions(at);
                    logGuardChanges(liveDefinitions);
                }
            } catch (RuntimeException e) {
                if (lastHeartbeat != null) { // a node that did not start keeps no other node from its sagas
                    try {
                        registry.remove(nodeId, lastHeartbeat);
                    } catch (RuntimeException removal) {
                        e.addSuppressed(removal);
                    }
                }
                if (ownScheduler != null) {
                    ownScheduler.close();
                }
                throw e;
            }
        }
        this.clock = new StampClock(scheduler.clock(), "streamsaga-saga-clock");
        try {
            if (registry != null) {
                // Before the replies' subscription, which may wait long (Kafka's first assignment, up to its
                // assignmentTimeout): the first heartbeat is written, so the node must keep it fresh from now on, or
                // it reads as dead to the others and its next heartbeat is counted late.
                repeatEvery("heartbeat", config.ownership().heartbeatInterval(), this::writeHeartbeat);
            }
            if (config.definitions().stream().anyMatch(d -> d.steps().stream().anyMatch(SagaStep::usesBus))) {
                subscribeReplies(); // the transport may refuse (closed, unreachable)
            }
            if (config.purgeInterval() != null) {
                repeating("retention purge", config.purgeInterval(), this::purgeBatch);
            }
            if (config.recoveryInterval() != null) {
                repeatEvery("recovery sweep", config.recoveryInterval(), this::sweepOnce);
            }
        } catch (RuntimeException | Error e) {
            // Not built after all: undone as close() would, in its order (the replies' subscription, the timers, then
            // the scheduler they run on), or a timer armed before the failure runs on a shared scheduler for good.
            // A heartbeat left behind would keep the other nodes from adopting this node's sagas for a lease, and
            // for as long as a node failing here restarts (and writes it again) within one.
            shutDown(removal -> e.addSuppressed(removal));
            throw e;
        }
    }

    private void repeatEvery(String name, Duration period, Runnable task) {
        repeating(name, period, () -> {
            task.run();
            return false;
        });
    }

    /**
     * {@code part}: one part of a run, true when another follows (the retention purge's batches), on the scope's
     * scheduler by the rule of the library's periodic tasks ({@link Scheduler#repeat}); the first run one period from
     * now. A part that finds the orchestrator closing (close() sets 'closed' before it cancels the task) does nothing.
     */
    private void repeating(String name, Duration period, BooleanSupplier part) {
        repeating.add(Scheduler.repeat(repeatingScope, "saga orchestrator: its " + name, period, period,
                () -> !closed && part.getAsBoolean()));
    }

    /**
     * A write of saga {@code sagaId} failed (the store unreachable, say) and stopped its run here ({@code written}: the
     * version the run last wrote, 0 before its start was stored; {@code attempted}: the instance the failed write
     * carried, which the store may hold all the same). Logged at ERROR once per streak of failures of the saga; then
     * this orchestrator tries to resume the saga itself after a backoff, as recover() would, and again while the
     * store fails ({@link StoreFailureResume}).
     */
    void storeFailed(String sagaId, long written, SagaInstance attempted, RuntimeException failure) {
        if (closed) {
            log.error("saga {}: the store failed as the orchestrator closed; the saga stops here and resumes on"
                    + " recover(): {}", sagaId, failure.toString());
            return;
        }
        while (true) {
            StoreFailureResume fresh = new StoreFailureResume(sagaId, attempted.sagaName());
            StoreFailureResume resume = resumes.putIfAbsent(sagaId, fresh);
            if (resume == null) {
                log.error("saga {}: the store failed; the saga stops here, and this orchestrator resumes it once the"
                        + " store answers (tried again with a backoff up to {}; recover() resumes it too): {}", sagaId,
                        RESUME_BACKOFF.maxBackoff(), failure.toString());
                fresh.failedAgain(written, attempted);
                return;
            }
            if (resume.failedAgain(written, attempted)) {
                log.debug("saga {}: the store failed again while it is resumed here: {}", sagaId, failure.toString());
                return;
            }
            resumes.remove(sagaId, resume); // it ended meanwhile: a streak of its own
        }
    }

    /**
     * The resumption of one saga whose run a store failure stopped: a task on the scheduler (in the scope close()
     * cancels) that resumes it as a recovery would ({@link #resumeRead}), after a backoff ({@link #RESUME_BACKOFF})
     * that grows while the store keeps failing, its reading or the run's writes. It ends once the saga is driven here
     * again (resumed by it, by a reply, a recovery or an operator call), is finished or gone, is another orchestrator's
     * (with saga ownership, a live node's, as recover() leaves it; without, written by another orchestrator since this
     * one last did, so driven there), cannot be resumed here (recover() reports why), or the orchestrator closes. It
     * stops for good on a ThreadDeath or a test's SimulatedProcessCrash, as the periodic tasks do (docs/architecture.md,
     * "A periodic task whose thread is stopped"); an Error from the resumed saga's step propagates, the run stopped as
     * if the process died there, for recover() to resume.
     */
    private final class StoreFailureResume implements Runnable {
        private final String sagaId;
        /** The saga's definition name, for its log keys (Builder.logContext) on the scheduler's thread. */
        private final String sagaName;
        /** Under this object's lock. The store failures of this streak. */
        private int failures;
        /** Under this object's lock: the last failing run's stored version, and the instance of its failed write. */
        private long written;
        private SagaInstance attempted;
        /** Under this object's lock: a try runs now, and a failure during it asks for another. */
        private boolean running;
        private boolean again;
        /** Under this object's lock: no try follows; a failure from now on begins a streak of its own. */
        private boolean ended;

        StoreFailureResume(String sagaId, String sagaName) {
            this.sagaId = sagaId;
            this.sagaName = sagaName;
        }

        /**
         * A store failure of the saga: a try is queued after the backoff, unless one is queued already; false when this
         * resumption ended (nothing done).
         */
        synchronized boolean failedAgain(long written, SagaInstance attempted) {
            if (ended) {
                return false;
            }
            this.written = written;
            this.attempted = attempted;
            failures++;
            if (running) {
                again = true; // the try in progress queues the next when it ends
            } else if (failures == 1) {
                queue();
            } // else: a try is queued, and it reads the saga as stored then
            return true;
        }

        private synchronized void end() {
            ended = true;
            resumes.remove(sagaId, this);
        }

        /**
         * A recovery resumes the saga: a try queued is ended (it gives way when it runs, and may never run, its
         * scheduler closed before this orchestrator), so that a later failure is a streak of its own, logged and
         * queued again; a try running now goes on.
         */
        synchronized void endIfWaiting() {
            if (!running) {
                end();
            }
        }

        /**
         * Whether the saga is still to be resumed: a try queued, or one running (close() waits for it, and a try a close
         * cut short does not end, so that close() names the saga).
         */
        synchronized boolean waiting() {
            return !ended;
        }

        private void queue() {
            try {
                repeatingScope.schedule(retryDelay(RESUME_BACKOFF, failures + 1), this);
            } catch (RuntimeException e) { // the scheduler closed before this orchestrator: recover() resumes it
                end();
                log.warn("saga {}: not resumed here after its store failure, the scheduler refused the task; recover()"
                        + " resumes it: {}", sagaId, e.toString());
            }
        }

        @Override
        public void run() {
            // What a try logs (given way, resumed, still failing) is about this saga, outside a drive: its keys
            String[] keys = enterSaga(sagaId, sagaName);
            try {
                tryOnce();
            } finally {
                leaveSaga(keys);
            }
        }

        private void tryOnce() {
            synchronized (this) {
                if (ended) { // a recovery resumed the saga since this try was queued
                    return;
                }
                running = true;
                again = false;
            }
            RuntimeException failed = null;
            boolean resumed = false;
            try {
                resumed = resumeOnce();
            } catch (SimulatedProcessCrash e) {
                // A test's store says this process died: a dead process runs no timers (as Scheduler.repeat).
                end();
                log.debug("{} thrown while resuming saga {} after its store failure: no further try", e.toString(),
                        sagaId);
                return;
            } catch (ThreadDeath e) {
                end();
                log.warn("saga {}: its resumption after a store failure stops for good, its thread stopped ({});"
                        + " recover() resumes it", sagaId, e.toString());
                throw e;
            } catch (RuntimeException e) {
                failed = e;
            } catch (Error e) { // from the resumed saga's step: its run stopped as if the process died there
                end();
                throw e;
            }
            synchronized (this) {
                running = false;
                if (closed) {
                    if (failed == null && !again) { // resumed, or given way: nothing left to resume
                        end();
                    } // else not resumed (the close's refusal, the store): close(), which waits for this try, names it
                    return;
                }
                if (failed != null) {
                    failures++;
                    log.debug("saga {}: not resumed yet, the store still fails (try {}): {}", sagaId, failures,
                            failed.toString());
                }
                if (failed != null || again) {
                    queue();
                    return;
                }
                end();
                if (resumed) {
                    log.info("saga {}: resumed here after its store failure ({} failure(s) in a row)", sagaId,
                            failures);
                }
            }
        }

        /**
         * One try: false when it gave way (driven here, finished, another orchestrator's); throws a store's failure to
         * read or adopt the saga (a write's failure comes back through {@link #storeFailed}).
         */
        private boolean resumeOnce() {
            ensureOpen(); // closed: not resumed, thrown as a close() after this check is (resumeRead)
            if (runs.containsKey(sagaId)) {
                return false; // driven here again (a reply, a recovery, an operator call)
            }
            SagaInstance stored = store.find(sagaId).orElse(null);
            if (stored == null || !stored.status().isActive()) {
                log.debug("saga {}: finished or gone since its store failure; nothing to resume", sagaId);
                return false;
            }
            long lastWritten;
            SagaInstance write;
            synchronized (this) {
                lastWritten = written;
                write = attempted;
            }
            if (registry != null) { // as a recovery leaves it: a live node's saga is that node's
                Instant leaseSince = idleSince(scheduler.clock().instant(), config.ownership().leaseTimeout());
                if (ownedByLiveNode(stored.owner(), registry.heartbeats(), leaseSince)) {
                    log.info("saga {}: not resumed here after its store failure; live node {} drives it", sagaId,
                            stored.owner());
                    return false;
                }
                heartbeatIfDue();
            } else if (stored.version() != lastWritten && !(stored.version() == write.version()
                    && stored.updatedAt().equals(write.updatedAt()))) {
                // Neither as this orchestrator last wrote it nor as its failed write would have: another one wrote it.
                // A try never migrates the saga (what it resumes was written here, under a version registered here,
                // and versions are never unregistered), so no write of its own can be taken for another's here.
                log.info("saga {}: not resumed here after its store failure; another orchestrator wrote it since"
                        + " (version {}, this one's last {})", sagaId, stored.version(), lastWritten);
                return false;
            }
            Map<String, String> unresolvable = new HashMap<>(1);
            List<String> elsewhere = new ArrayList<>(1);
            if (resumeRead(stored, new ArrayList<>(1), unresolvable, elsewhere, true)) {
                return true;
            }
            if (!elsewhere.isEmpty()) {
                log.info("saga {}: not resumed here after its store failure; another node adopted it first", sagaId);
            } else if (!unresolvable.isEmpty()) {
                log.debug("saga {}: not resumed here after its store failure: {}", sagaId, unresolvable.get(sagaId));
            }
            return false;
        }
    }

    /**
     * Writes this node's heartbeat, unless closed (serialised with close()'s removal, so that none is written after
     * it, and with the other writes, so that it never goes back); a failure is logged, and the next one tries again
     * (the lease timeout covers a few misses).
     */
    private void writeHeartbeat() {
        synchronized (heartbeatLock) {
            if (closed) {
                return;
            }
            Instant previous = lastHeartbeat;
            Instant at;
            try {
                at = scheduler.clock().instant();
                registry.heartbeat(nodeId, at, advertisedDefinitions());
                lastHeartbeat = at;
            } catch (RuntimeException e) {
                log.warn("saga ownership: node {}'s heartbeat failed, retrying at the next interval: {}", nodeId,
                        e.toString());
                return;
            }
            if (guardsVersions) {
                try {
                    liveDefinitions = readLiveDefinitions(at);
                    logGuardChanges(liveDefinitions);
                } catch (RuntimeException e) { // the last reading stays: a node it saw live stays so one more interval
                    log.warn("saga ownership: node {} could not read the definitions the other nodes advertise, keeping"
                            + " its last reading until the next heartbeat: {}", nodeId, e.toString());
                }
            }
            // A lease or more since the previous one (both on this node's clock): for as long, the other nodes read
            // this node as dead and may have adopted its sagas.
            if (previous != null && Duration.between(previous, at).compareTo(config.ownership().leaseTimeout()) >= 0) {
                log.warn("saga ownership: node {}'s heartbeat was written {} after its previous one, at least its lease"
                        + " timeout ({}): the other nodes may have adopted its sagas meanwhile; a run of one that"
                        + " they did learns so at its next write", nodeId, Duration.between(previous, at),
                        config.ownership().leaseTimeout());
                // Guarded (SagaOrchestrator.Config): what it throws is logged, also when a recovery writes it.
                config.metrics().increment(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, Map.of("node", nodeId));
            }
        }
    }

    /**
     * What this node advertises with its heartbeat: every definition version registered here, by saga name, when one
     * of them has a remote step (this node then reads the reply topic and may take the replies of any saga); none
     * otherwise, as a node reading no reply takes none. A definition registered at its first start is advertised from
     * the next heartbeat on.
     */
    private Map<String, Set<Integer>> advertisedDefinitions() {
        Map<String, Set<Integer>> advertised = new HashMap<>();
        boolean readsReplies = false;
        for (Map.Entry<String, TreeMap<Integer, SagaDefinition<?>>> saga : definitions.entrySet()) {
            TreeMap<Integer, SagaDefinition<?>> versions = saga.getValue();
            synchronized (versions) {
                advertised.put(saga.getKey(), Set.copyOf(versions.keySet()));
                for (SagaDefinition<?> definition : versions.values()) {
                    readsReplies |= definition.steps().stream().anyMatch(SagaStep::usesBus);
                }
            }
        }
        return readsReplies ? advertised : Map.of();
    }

    /** The other live nodes' advertised definitions, as the registry has them now (one read). */
    private LiveDefinitions readLiveDefinitions(Instant now) {
        return LiveDefinitions.of(registry.nodes(), nodeId, idleSince(now, config.ownership().leaseTimeout()));
    }

    /**
     * A start of {@code definition}'s version, which another live node has not registered: refused, or with
     * FALL_BACK the newest version registered here and on every live node when its data class is the same. A
     * definition without a remote step or compensation starts: no reply of it can reach another node.
     */
    @SuppressWarnings("unchecked")
    private <D> SagaDefinition<D> notOnEveryNode(SagaDefinition<D> definition, LiveDefinitions live) {
        if (definition.steps().stream().noneMatch(SagaStep::usesBus)) {
            return definition;
        }
        SagaDefinition<?> newest = newestOnEveryNode(definition.name(), live);
        String why = null;
        if (fallsBackTo(definition, newest)) {
            return (SagaDefinition<D>) newest;
        }
        if (config.versionGuard() == SagaOrchestrator.VersionGuard.FALL_BACK && newest != null) {
            why = "not fallen back to: its data class is " + newest.dataClass().getName() + ", not "
                    + definition.dataClass().getName();
        }
        throw new SagaVersionNotDeployedException(definition.name(), definition.version(),
                live.lacking(definition.name(), definition.version()), newest == null ? null : newest.version(), why);
    }

    /** The newest version of saga {@code name} registered here that every other live node has, or null. */
    private SagaDefinition<?> newestOnEveryNode(String name, LiveDefinitions live) {
        TreeMap<Integer, SagaDefinition<?>> versions = definitions.get(name);
        if (versions != null) {
            synchronized (versions) {
                for (SagaDefinition<?> registered : versions.descendingMap().values()) {
                    if (live.everywhere(name, registered.version())) {
                        return registered;
                    }
                }
            }
        }
        return null;
    }

    /** Whether FALL_BACK starts {@code newest} (possibly null) for {@code definition}: the same data class. */
    private boolean fallsBackTo(SagaDefinition<?> definition, SagaDefinition<?> newest) {
        return config.versionGuard() == SagaOrchestrator.VersionGuard.FALL_BACK && newest != null
                && newest.dataClass() == definition.dataClass();
    }

    /** A guarded version registered here that another live node lacks, for the log of what start does with it. */
    private record Guarded(String saga, int version) {
    }

    /**
     * Logs, at each heartbeat's reading, the guarded versions registered here whose start changed: fallen back (to
     * which version), refused, or started as given again; once per change, not per start. {@code lastGuarded} is
     * written in the constructor and under the heartbeat lock.
     */
    private void logGuardChanges(LiveDefinitions live) {
        Map<Guarded, Integer> guarded = new HashMap<>(); // the version started instead, 0 for refused
        Map<Guarded, List<String>> lacking = new HashMap<>();
        for (TreeMap<Integer, SagaDefinition<?>> versions : definitions.values()) {
            List<SagaDefinition<?>> registered;
            synchronized (versions) {
                registered = List.copyOf(versions.values());
            }
            for (SagaDefinition<?> definition : registered) {
                if (definition.steps().stream().anyMatch(SagaStep::usesBus)
                        && !live.everywhere(definition.name(), definition.version())) {
                    SagaDefinition<?> newest = newestOnEveryNode(definition.name(), live);
                    Guarded key = new Guarded(definition.name(), definition.version());
                    guarded.put(key, fallsBackTo(definition, newest) ? newest.version() : 0);
                    lacking.put(key, live.lacking(definition.name(), definition.version()));
                }
            }
        }
        lastGuarded.forEach((key, was) -> {
            if (!guarded.containsKey(key)) {
                log.info("saga ownership: node {} starts saga '{}' version {} as given again: every live node has"
                        + " registered it", nodeId, key.saga(), key.version());
            }
        });
        guarded.forEach((key, instead) -> {
            if (!instead.equals(lastGuarded.get(key))) {
                if (instead == 0) {
                    log.info("saga ownership: node {} refuses to start saga '{}' version {}: live node(s) {} have not"
                            + " registered it", nodeId, key.saga(), key.version(), lacking.get(key));
                } else {
                    log.info("saga ownership: node {} starts saga '{}' version {} as version {} (versionGuard"
                            + " FALL_BACK): live node(s) {} have not registered it", nodeId, key.saga(),
                            key.version(), instead, lacking.get(key));
                }
            }
        });
        lastGuarded = Map.copyOf(guarded);
    }

    /**
     * During a recovery, before it adopts a saga: the heartbeat, when a heartbeat interval passed since the last one.
     * A recoverEvery sweep runs on the scheduler's thread, as the heartbeat task does, and drives the sagas it adopts
     * there: without this, a sweep adopting many sagas of a dead node would hold the heartbeat back for as long, and
     * the other nodes would adopt this node's sagas, those it drives at that moment included.
     */
    private void heartbeatIfDue() {
        Instant last = lastHeartbeat;
        if (last == null || !scheduler.clock().instant().isBefore(last.plus(config.ownership().heartbeatInterval()))) {
            writeHeartbeat();
        }
    }

    /** This node's id with saga ownership, or null: every instance a run writes carries it. */
    String nodeId() {
        return nodeId;
    }

    private void sweepOnce() {
        try {
            recover(config.recoveryIdleFor(), true);
        } catch (RuntimeException e) { // closed meanwhile, or the store failed: the next sweep tries again
            if (closed) {
                log.debug("saga recovery sweep stopped by close()");
            } else {
                log.warn("saga recovery sweep failed, retrying at the next interval: {}", e.toString());
            }
        }
    }

    /**
     * One batch of the scheduled retention purge's run, which reads its cutoff at its first batch and keeps it (sagas
     * outdated meanwhile wait for the next run); true after a full batch: another follows, a task of its own. A failure
     * ends the run, logged once; the next run tries again.
     */
    private boolean purgeBatch() {
        if (purgeCutoff == null) {
            purgeCutoff = now().minus(config.retention());
            purgedInRun = 0;
        }
        boolean more = false;
        try {
            int deleted = store.deleteFinishedBefore(purgeCutoff, PURGE_BATCH);
            purgedInRun += deleted;
            more = deleted == PURGE_BATCH;
            if (!more) {
                log.debug("saga retention: {} finished saga(s) deleted", purgedInRun);
            }
        } catch (RuntimeException e) {
            log.warn("saga retention: purge failed after {} finished saga(s) deleted, retrying at the next interval: {}",
                    purgedInRun, e.toString());
        } finally {
            if (!more) { // also after an Error: the next run, if any, reads its own cutoff
                purgeCutoff = null;
            }
        }
        return more;
    }

    Config config() {
        return config;
    }

    /** The jittered delay before a retry's attempt {@code nextAttempt} ({@link RetryJitter}). Only on retries. */
    Duration retryDelay(RetryPolicy policy, int nextAttempt) {
        return RetryJitter.delayBefore(policy, nextAttempt, config.retryJitter());
    }

    SagaStore store() {
        return store;
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /** Whether commands and lifecycle events go to the store with their transition instead of to the bus. */
    boolean transactionalMessages() {
        return transactionalMessages;
    }

    /** Whether runs write the transitions between two acts in one store write. */
    boolean batchesTransitions() {
        return batchesTransitions;
    }

    /** Whether runs record their transitions' parts (false: a batching store that keeps no history gets none). */
    boolean recordsTransitions() {
        return recordsTransitions;
    }

    /** Whether listeners or lifecycle events hear of transitions (runs then write each before telling them). */
    boolean observed() {
        return observed;
    }

    /**
     * The lifecycle event a stored transition emits, for a store that writes it with the transition, or null.
     * Its id is {@link SagaLifecycleEvent#messageId}: deterministic, so a relayed duplicate is recognisable, and
     * another for a saga started later under the same id.
     */
    Message lifecycleMessage(SagaInstance instance, SagaTransition transition) {
        if (config.lifecycleTopic() == null) {
            return null;
        }
        String event = switch (transition.type()) {
            case SAGA_STARTED -> "started";
            case STEP_SUCCEEDED -> "step-completed";
            case SAGA_COMPENSATING -> "compensating";
            case SAGA_COMPLETED -> "completed";
            case SAGA_COMPENSATED -> "compensated";
            case SAGA_NEEDS_ATTENTION -> "failed";
            case SAGA_RESOLVED -> "resolved";
            // An operator's retry or skip that took the saga out of needing attention (see SagaRun.operatorRestarted),
            // or a skip that left it needing attention for another failed compensation (SagaRun.skipNow)
            case SAGA_RETRIED, COMPENSATION_SKIPPED -> switch (instance.status()) {
                case COMPENSATING -> "compensating";
                case RUNNING -> "retried";
                case FAILED_NEEDS_ATTENTION -> "failed";
                default -> null;
            };
            default -> null;
        };
        if (event == null) {
            return null;
        }
        SagaFailure failure = switch (event) {
            case "compensating", "compensated" -> instance.failure();
            case "failed", "resolved" -> attentionFailure(instance);
            default -> null;
        };
        // A saga sent forward again keeps no failure: the retry's detail is the one it retries after (SagaRun.retryFailedNow)
        String error = event.equals("retried") ? transition.detail() : failure == null ? null : failure.toString();
        return lifecycleBuilder(instance, event, event.equals("step-completed") ? transition.step() : null, error, true)
                .id(SagaLifecycleEvent.messageId(instance, transition.version()))
                .timestamp(transition.at())
                .build();
    }

    EventBus bus() {
        return config.bus();
    }

    /**
     * A message to hand to the store (transactional messages), started on {@code builder}: its relay publishes it
     * later, outside any handler, so it takes now what a publish from the handler running on this thread would
     * inherit (see docs/architecture.md): the handled message's correlation id (else its id), saga id and
     * traceparent, and its id as causation id. Call before setting the message's own headers, which win.
     */
    Message.Builder inheritingHandled(Message.Builder builder) {
        EventBus bus = config.bus();
        Message cause = bus == null ? null : bus.currentMessage().orElse(null);
        if (cause != null) {
            builder.headers(cause.inheritedHeaders());
        }
        return builder;
    }

    /** Where parallel members' synchronous actions run: the configured executor or the orchestrator's own threads. */
    Executor parallelExecutor() {
        if (config.parallelExecutor() != null) {
            return config.parallelExecutor();
        }
        synchronized (this) {
            if (ownParallelExecutor == null) {
                AtomicInteger threads = new AtomicInteger();
                ownParallelExecutor = Executors.newCachedThreadPool(task -> {
                    Thread thread = new Thread(task, "saga-parallel-" + threads.incrementAndGet());
                    thread.setDaemon(true);
                    return thread;
                });
            }
            return ownParallelExecutor;
        }
    }

    /**
     * The scheduler's time; on the system clock to the millisecond (saga timestamps need no more) and, while
     * sagas run hot, from a ticker's reading instead of a clock read per transition (see {@link StampClock}).
     */
    Instant now() {
        return clock.now();
    }

    /**
     * Whether {@code reply} answers a command of another saga under the id {@code sagaId} than the one started at
     * {@code createdAt} (a saga purged by retention, whose id was used again): its causation id, the id of the command
     * it answers ({@link SagaMessages#reply} sets it), starts with the {@code <saga id>/<created at>} of another start ({@link SagaMessages#commandId}). A
     * reply whose causation id is absent or of another form (a participant's hand-built reply, one from before command
     * ids held the start) cannot tell, and is not.
     */
    static boolean answersAnotherSaga(Message reply, String sagaId, Instant createdAt) {
        Instant own = createdAt.truncatedTo(java.time.temporal.ChronoUnit.MICROS);
        Instant answered = startAnswered(reply, sagaId, own);
        return answered != null && !answered.equals(own);
    }

    /**
     * The start of the saga under the id {@code sagaId} whose command {@code reply} answers, read from its causation id
     * (see {@link #answersAnotherSaga}), or null when that names none; {@code own} itself, not parsed, when it names that
     * (every reply of a library participant).
     */
    private static Instant startAnswered(Message reply, String sagaId, Instant own) {
        String cause = reply.causationId().orElse(null);
        int from = sagaId.length() + 1;
        if (cause == null || cause.length() <= from || !cause.startsWith(sagaId) || cause.charAt(from - 1) != '/') {
            return null;
        }
        int end = cause.indexOf('/', from);
        if (end < 0) {
            return null;
        }
        String start = own.toString();
        if (end - from == start.length() && cause.startsWith(start, from)) {
            return own; // this saga's: no parse
        }
        try {
            return Instant.parse(cause.substring(from, end));
        } catch (java.time.format.DateTimeParseException e) {
            return null; // not a start: an id of another form
        }
    }

    /**
     * Whether {@code reply}, taken for another saga's ({@link #answersAnotherSaga}), answers a saga started within the
     * millisecond of {@code createdAt} as stored, which holds no part of a millisecond: the likely sign of a store that
     * keeps a saga's start to the millisecond only, against {@link SagaStore}'s requirement, not of another saga.
     */
    static boolean startMatchesOnlyToTheMillisecond(Message reply, String sagaId, Instant createdAt) {
        if (createdAt.getNano() % 1_000_000 != 0) {
            return false;
        }
        Instant answered = startAnswered(reply, sagaId, createdAt);
        return answered != null && !answered.equals(createdAt)
                && answered.truncatedTo(java.time.temporal.ChronoUnit.MILLIS).equals(createdAt);
    }

    boolean isClosed() {
        return closed;
    }

    private void register(SagaDefinition<?> definition) {
        TreeMap<Integer, SagaDefinition<?>> versions = definitions.computeIfAbsent(definition.name(), n -> new TreeMap<>());
        synchronized (versions) {
            versions.putIfAbsent(definition.version(), definition);
        }
    }

    /** Null when {@code codec} decodes to {@code reply}; else why not ({@link EventCodec#whyCannotDecodeTo}). */
    private static String whyNotDecodable(EventCodec codec, Class<?> reply) {
        return codec.canDecodeTo(reply) ? null : EventCodec.whyCannotDecodeTo(codec, reply);
    }

    /**
     * Null when the bus's registry gives {@code command} a type id; else why not ({@link TypeRegistry#idOf}'s
     * refusal, which names the call that registers it).
     */
    private static String whyNotRegistered(EventBus bus, Class<?> command) {
        try {
            bus.codec().types().idOf(command);
            return null;
        } catch (UnknownEventTypeException e) {
            return e.getMessage();
        }
    }

    /**
     * Refuses a definition whose remote step or remote compensation waits for a reply of a class the bus's codec cannot
     * decode to ({@link io.streamsaga.codec.EventCodec#canDecodeTo}), or sends commands of a declared class the bus's
     * registry does not register (the type id a command goes on the wire under): every reply, or every send, would fail
     * that step, and the saga compensate, or that compensation. Checked where a definition meets the bus, at build for
     * the registered ones and at the first start of another, so recovery and replies only meet checked ones. A command
     * class known only when its factory runs is met at the send. Without a bus a remote step is refused as such.
     */
    private static void requireCommandsAndRepliesCodable(EventBus bus, SagaDefinition<?> definition) {
        if (bus == null) {
            return;
        }
        for (SagaStep<?> step : definition.steps()) {
            Class<?> command = step.remote().<Class<?>>map(SagaStep.Remote::commandType).orElse(null);
            String unregistered = command == null ? null : whyNotRegistered(bus, command);
            if (unregistered != null) {
                throw new ConfigurationException("saga " + quote(definition.name()) + ": step " + quote(step.name())
                        + " sends commands of class " + command.getName() + ", which the bus's TypeRegistry gives no type"
                        + " id, so every send would fail the step: " + unregistered);
            }
            command = step.remoteCompensation().<Class<?>>map(SagaStep.RemoteCompensation::commandType).orElse(null);
            unregistered = command == null ? null : whyNotRegistered(bus, command);
            if (unregistered != null) {
                throw new ConfigurationException("saga " + quote(definition.name()) + ": the compensation of step "
                        + quote(step.name()) + " sends commands of class " + command.getName() + ", which the bus's"
                        + " TypeRegistry gives no type id, so every send would fail the compensation: " + unregistered);
            }
            Class<?> reply = step.remote().<Class<?>>map(SagaStep.Remote::replyType).orElse(null);
            String why = reply == null ? null : whyNotDecodable(bus.codec(), reply);
            if (why != null) {
                throw new ConfigurationException("saga " + quote(definition.name()) + ": step "
                        + quote(step.name()) + " waits for a reply of class " + reply.getName()
                        + ", which the bus's codec cannot decode to, so every reply would fail the step: " + why);
            }
            reply = step.remoteCompensation().<Class<?>>map(SagaStep.RemoteCompensation::replyType).orElse(null);
            why = reply == null ? null : whyNotDecodable(bus.codec(), reply);
            if (why != null) {
                throw new ConfigurationException("saga " + quote(definition.name())
                        + ": the compensation of step " + quote(step.name()) + " waits for a reply of"
                        + " class " + reply.getName() + ", which the bus's codec cannot decode to, so every reply would"
                        + " fail the compensation: " + why);
            }
        }
    }

    private SagaDefinition<?> registered(String name, int version) {
        TreeMap<Integer, SagaDefinition<?>> versions = definitions.get(name);
        if (versions == null) {
            return null;
        }
        synchronized (versions) {
            return versions.get(version);
        }
    }

    private void subscribeReplies() {
        synchronized (subscriptionLock) {
            if (replies != null) {
                return;
            }
            if (repliesClosed) { // a start() racing close(): its subscription would outlive the orchestrator
                throw new SagaException(null, null, "the orchestrator is closed", null, false);
            }
            ConfigurationException.require(config.bus() != null, "remote saga steps need a bus on the orchestrator");
            // EARLIEST: a reply published before this orchestrator subscribed (after a restart) is still read.
            replies = config.bus().subscribe(config.group(), config.replyTopic(), Message.class,
                    SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (message, ctx) -> onReply(message));
        }
    }

    // ---------------------------------------------------------------- start

    @Override
    public <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, D data) {
        return begin(requireDefinition(definition), nextId(), null, data);
    }

    @Override
    public <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, String businessKey, D data) {
        return begin(requireDefinition(definition), nextId(), businessKey, data);
    }

    private static <D> SagaDefinition<D> requireDefinition(SagaDefinition<D> definition) {
        if (definition == null) { // a plain if: ConfigurationException.require's varargs would allocate on every start
            throw new ConfigurationException("a saga definition must be given to start a saga, but was null");
        }
        return definition;
    }

    private String nextId() {
        return idPrefix + idSequence.incrementAndGet(); // one concatenation, no intermediate string
    }

    @Override
    public <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, String sagaId, String businessKey, D data) {
        requireDefinition(definition);
        // Only here: generated ids (nextId) are never blank and have no '/'.
        // Plain ifs, not ConfigurationException.require(...): its varargs would allocate on every start.
        if (sagaId == null || sagaId.isBlank()) { // before the run is registered under it
            throw new ConfigurationException("saga '" + definition.name() + "': the saga id must not be blank, but was '"
                    + sagaId + "'");
        }
        // '/' separates the parts of command ids and idempotency keys: saga 's/a''s step 'compensation' would get
        // key 's/a/compensation', the key of the compensation of step 'a' in saga 's'.
        if (sagaId.indexOf('/') >= 0) {
            throw new ConfigurationException("saga '" + definition.name() + "': the saga id must not contain '/', but was '"
                    + sagaId + "'");
        }
        return begin(definition, sagaId, businessKey, data);
    }

    private <D> CompletionStage<SagaResult<D>> begin(SagaDefinition<D> definition, String sagaId, String businessKey, D data) {
        ensureOpen();
        // Plain ifs, not ConfigurationException.require(...): its varargs would allocate on every start.
        if (data == null) {
            throw new ConfigurationException("saga '" + definition.name() + "': data must not be null");
        }
        if (!definition.dataClass().isInstance(data)) {
            throw new ConfigurationException("saga '" + definition.name() + "': data must be a "
                    + definition.dataClass().getName() + ", but was a " + data.getClass().getName());
        }
        StepStates states = stepStates.get(definition);
        if (states == null) { // first start of this definition object
            requireCommandsAndRepliesCodable(config.bus(), definition);
            // Before the guard, which may refuse it: advertised from the next heartbeat on, else nodes that each
            // register it at its first start would refuse it for one another for good.
            register(definition);
            states = stepStates(definition);
        }
        if (guardsVersions) {
            LiveDefinitions live = liveDefinitions;
            if (!live.everywhere(definition.name(), definition.version())) {
                SagaDefinition<D> started = notOnEveryNode(definition, live);
                if (started != definition) {
                    definition = started;
                    states = stepStates(definition);
                }
            }
        }
        if (replies == null && states.usesBus) {
            subscribeReplies();
        }
        // The run stores the start itself: with transition batches together with the first step's start.
        SagaRun<D> run = new SagaRun<>(this, definition, states, sagaId, businessKey, data, now());
        if (runs.putIfAbsent(sagaId, run) != null) {
            return CompletableFuture.failedFuture(new ConcurrentSagaUpdateException(sagaId, 0, 1));
        }
        if (closed) { // close() ran since the check above and did not see this run: it would never be stopped
            runs.remove(sagaId, run);
            ensureOpen();
        }
        config.metrics().sagaStarted(definition.name()); // guarded: what it throws is logged and ignored
        if (batchesTransitions && !observed) {
            return run.driveStarted();
        }
        if (!run.storeStart()) {
            return run.pendingResult();
        }
        if (observed) {
            SagaInstance instance = run.instance();
            String[] previous = run.enterLogContext(); // the listeners hear of the start outside a drive
            try {
                // Published before the listeners hear of it: a listener may cancel, and its events must follow this one.
                publish(instance, "started", null, null);
                if (!config.listeners().isEmpty()) {
                    notify(l -> l.onStarted(instance));
                }
            } catch (Error e) { // not yet driven: the run stops as for an Error while driven
                run.abandonStarted(e);
                throw e;
            } finally {
                run.leaveLogContext(previous);
            }
            run.drive();
        } else {
            return run.driveStarted();
        }
        return run.pendingResult();
    }

    /** The interceptors, in configuration order (never modified: callers only read it). */
    SagaInterceptor[] interceptors() {
        return interceptors;
    }

    /**
     * Whether runs of straight definitions may skip the general scan ({@code SagaRun.forwardStraight}): the
     * store takes batches, and no listener or lifecycle topic has to hear of each transition as it is stored.
     */
    boolean drivesStraight() {
        return batchesTransitions && !observed;
    }

    /**
     * Puts a saga's keys (no step) in the MDC while the engine works on it outside a run's drive (a recovery reading
     * it, a reply or an operator call finding its run, a lifecycle event's failed send), when logContext asks for
     * them: what it logs there is about that saga. Returns what the thread had, for {@link #leaveSaga}; null when off.
     */
    private String[] enterSaga(String sagaId, String sagaName) {
        return logContext ? LogContext.putSaga(sagaId, sagaName, null) : null;
    }

    /** Puts back what {@link #enterSaga} returned (null: nothing was put). */
    private static void leaveSaga(String[] previous) {
        if (previous != null) {
            LogContext.restoreSaga(previous);
        }
    }

    /** Whether runs put the saga's keys in the MDC while they call the application (Builder.logContext). */
    boolean logContext() {
        return logContext;
    }

    /** The definition's shared common-path step states (a get, not computeIfAbsent: no lambda on the fast path). */
    StepStates stepStates(SagaDefinition<?> definition) {
        StepStates states = stepStates.get(definition);
        if (states == null) {
            states = new StepStates(definition);
            stepStates.put(definition, states);
        }
        return states;
    }

    // ---------------------------------------------------------------- recovery

    @Override
    public RecoveryReport recover() {
        return recover(Duration.ZERO);
    }

    @Override
    public RecoveryReport recover(Duration idleFor) {
        return recover(idleFor, false);
    }

    /** {@code sweep}: a periodic recovery ({@code recoverEvery}), which logs at INFO only when it resumed a saga. */
    private RecoveryReport recover(Duration idleFor, boolean sweep) {
        idleFor = ConfigurationException.requireAge(idleFor, "idleFor");
        ensureOpen();
        // Zero compares nothing: another node's clock ahead of this one's must not hide its sagas from recover().
        Instant idleSince = idleFor.isZero() ? null : idleSince(now(), idleFor);
        List<String> resumed = new ArrayList<>();
        // By saga id, why each was left: the report gives the reasons, not only the log.
        Map<String, String> unresolvable = new LinkedHashMap<>();
        List<String> recentlyUpdated = new ArrayList<>();
        List<String> moved = new ArrayList<>();
        List<String> ownedElsewhere = new ArrayList<>();
        Instant scanned = now();
        // Read before the first page too, for the store to leave out the sagas of the nodes alive then: one that dies
        // meanwhile has its sagas adopted by the next recovery, one started meanwhile is in the reading after the page.
        Map<String, Instant> heartbeats = registry == null ? null : registry.heartbeats();
        Instant leaseSince = registry == null ? null
                : idleSince(scheduler.clock().instant(), config.ownership().leaseTimeout());
        // The ids of the sagas read: a run here whose saga is among them needs no check of its own below.
        Set<String> activeIds = new HashSet<>();
        RecoveryQuery query = RecoveryQuery.firstPage(idleSince, liveOwners(heartbeats, leaseSince), RECOVERY_PAGE);
        while (true) {
            List<SagaInstance> page = store.findRecoveryCandidates(query);
            if (query.after() != null && !page.isEmpty() && activeIds.contains(page.get(0).sagaId())) {
                // A saga's place never changes, so no page repeats one: this store ignores the position it was asked
                // after, and reading on would hand out the same page for ever.
                log.error("saga recovery: the store {} returned saga {} again on the page after it; it does not page as"
                        + " SagaStore.findRecoveryCandidates requires, so this recovery stops here: the sagas after the"
                        + " pages read so far are not resumed", store, page.get(0).sagaId());
                break;
            }
            if (registry != null) {
                // Read after the sagas: a node writes its first heartbeat before any saga, so the owner of every saga
                // read has one here unless it closed (removed it) or its lease ran out. Read before, a node started in
                // between would have sagas and no heartbeat, and they would be adopted from it.
                heartbeats = registry.heartbeats();
                leaseSince = idleSince(scheduler.clock().instant(), config.ownership().leaseTimeout());
            }
            boolean drovenSinceRead = false; // a saga was driven here since the heartbeats were read
            for (SagaInstance instance : page) {
                activeIds.add(instance.sagaId());
                SagaRun<?> registered = runs.get(instance.sagaId());
                // A run here that another orchestrator's write superseded is dropped; its saga is then treated as any
                // other.
                if (registered != null && (registered.storedVersionHint() >= instance.version()
                        || !dropIfSuperseded(registered, unresolvable))) {
                    // Driven here already; but one a reply made this orchestrator drive, which no report told of yet,
                    // is reported now (not while a store failure left it unchecked: the next recovery reports it).
                    if (!unresolvable.containsKey(instance.sagaId())
                            && adoptedByReplies.remove(instance.sagaId(), registered)) {
                        resumed.add(instance.sagaId());
                    }
                    continue;
                }
                // Left out by the store already, but for a node alive only in the reading after the page (and for a
                // store that returns more than asked).
                if (heartbeats != null && ownedByLiveNode(instance.owner(), heartbeats, leaseSince)) {
                    ownedElsewhere.add(instance.sagaId()); // its node is alive: it drives it, however long it waits
                    continue;
                }
                if (idleSince != null && instance.updatedAt().isAfter(idleSince)) {
                    recentlyUpdated.add(instance.sagaId()); // probably driven by another orchestrator right now
                    continue;
                }
                ensureOpen(); // close() ran meanwhile (the sweep's thread is not the caller's): nothing more is resumed
                if (registry != null) {
                    heartbeatIfDue();
                    String owner = instance.owner();
                    if (drovenSinceRead && owner != null && !owner.equals(nodeId)) {
                        // Driving the sagas adopted so far took time: their owner may be back meanwhile (restarted
                        // under its id, awake after a pause), resuming its sagas itself without a write that would
                        // stop this one.
                        heartbeats = registry.heartbeats();
                        leaseSince = idleSince(scheduler.clock().instant(), config.ownership().leaseTimeout());
                        drovenSinceRead = false;
                        if (ownedByLiveNode(owner, heartbeats, leaseSince)) {
                            ownedElsewhere.add(instance.sagaId());
                            continue;
                        }
                    }
                }
                if (resumeRead(instance, moved, unresolvable, ownedElsewhere, false)) {
                    resumed.add(instance.sagaId());
                    drovenSinceRead = true;
                }
            }
            if (page.size() != RECOVERY_PAGE) { // the last page (or all of them at once, from a store that cannot page)
                break;
            }
            query = query.next(page.get(page.size() - 1), liveOwners(heartbeats, leaseSince));
        }
        // A run here whose saga another orchestrator finished (or purged) is in no page: checked one by one, only
        // those that wrote nothing since before the query (the others are driven, or started meanwhile). A run not
        // stored yet (its start's first pass still holds its lock, perhaps for a whole straight saga) is skipped
        // without waiting for that lock: it has nothing another orchestrator could have moved on. A run's saga as it
        // last wrote it (under this node's id, never left out) is in the pages unless it was updated within idleFor:
        // so only a run that wrote nothing for idleFor is checked (one that wrote since is left to a later
        // recovery: reading every such run here would cost one read per run and recovery).
        for (SagaRun<?> registered : runs.values()) {
            Instant lastWrite = registered.updatedAtHint();
            if (!activeIds.contains(registered.sagaId()) && registered.storedVersionHint() != 0 && lastWrite != null
                    && lastWrite.isBefore(scanned) && (idleSince == null || !lastWrite.isAfter(idleSince))
                    && dropIfSuperseded(registered, unresolvable)) {
                String[] keys = registered.enterLogContext(); // its line if it cannot be read again
                try {
                    leftAloneAfterDrop(registered.sagaId(), idleSince, recentlyUpdated, ownedElsewhere);
                } finally {
                    registered.leaveLogContext(keys);
                }
            }
        }
        if (heartbeats != null) {
            removeExpiredHeartbeats(heartbeats, leaseSince);
        }
        if (sweep && resumed.isEmpty() && unresolvable.isEmpty()) {
            log.debug("saga recovery sweep: nothing resumed, {} updated within {} left alone, {} owned by live nodes",
                    recentlyUpdated.size(), idleFor, ownedElsewhere.size());
        } else if (idleSince == null && registry == null) {
            log.info("saga recovery: {} resumed, {} unresolvable", resumed.size(), unresolvable.size());
        } else {
            log.info("saga recovery: {} resumed, {} unresolvable, {} updated within {} left alone, {} owned by live"
                    + " nodes", resumed.size(), unresolvable.size(), recentlyUpdated.size(), idleFor,
                    ownedElsewhere.size());
        }
        return new RecoveryReport(resumed, List.copyOf(unresolvable.keySet()), recentlyUpdated, ownedElsewhere,
                unresolvable);
    }

    /**
     * A recovery's resumption of one saga it read and may resume (not driven here, not left alone): adopts it
     * ({@link #adopt}), with saga ownership claims it ({@link SagaRun#claim}), and drives it; true when it did. Otherwise
     * the saga's id is added to {@code moved} (it moved since it was read), {@code ownedElsewhere} (another node claimed
     * it first) or {@code unresolvable} (with why). {@code transientThrown}: a failure to adopt it that is not the
     * engine's refusal (a {@link SagaException}, reported as above), a store's or a transport's, is thrown rather than
     * reported, so that the caller tries again ({@link StoreFailureResume}); so is the refusal of an orchestrator closed
     * meanwhile, which ends the caller's tries without an ERROR (close() names the saga in its WARN).
     */
    private boolean resumeRead(SagaInstance instance, List<String> moved, Map<String, String> unresolvable,
                               List<String> ownedElsewhere, boolean transientThrown) {
        // What is logged of it from here (not resumable, moved, adopted elsewhere) is about this saga: its keys, as in
        // a drive
        String[] keys = enterSaga(instance.sagaId(), instance.sagaName());
        try {
            return resumeReadKeyed(instance, moved, unresolvable, ownedElsewhere, transientThrown);
        } finally {
            leaveSaga(keys);
        }
    }

    private boolean resumeReadKeyed(SagaInstance instance, List<String> moved, Map<String, String> unresolvable,
                                    List<String> ownedElsewhere, boolean transientThrown) {
        SagaRun<?> run;
        int movedBefore = moved.size();
        try {
            run = adopt(instance, moved, unresolvable, null);
        } catch (RuntimeException e) { // its data cannot be upcast or read: the other sagas are still resumed
            // A resumption's try: a close() since it checked (adopt's refusal) ends it without an ERROR
            if (transientThrown && (!(e instanceof SagaException) || closed)) {
                throw e;
            }
            log.error("saga {}: cannot be resumed; it stays in the store: {}", instance.sagaId(), e.toString());
            // The engine's own refusals say what is wrong in their message; another exception needs its class,
            // as does a SagaException without a message (a store's): a null reason would be replaced by the
            // generic one below.
            unresolvable.putIfAbsent(instance.sagaId(), e instanceof SagaException && e.getMessage() != null
                    ? e.getMessage() : e.toString());
            run = null;
        }
        if (moved.size() > movedBefore) {
            return false;
        }
        if (run != null && registry != null) {
            SagaRun.Claim claim = run.claim();
            if (claim == SagaRun.Claim.LOST) {
                ownedElsewhere.add(instance.sagaId()); // another node adopted it first
                return false;
            }
            if (claim == SagaRun.Claim.FAILED) {
                Throwable stopped = run.stopReason();
                unresolvable.putIfAbsent(instance.sagaId(), "the write adopting it under this node's id did"
                        + " not happen (the next recovery tries again)" + (stopped == null ? "" : ": " + stopped));
                run = null;
            }
        }
        if (run == null) {
            unresolvable.putIfAbsent(instance.sagaId(), "it cannot be resumed here");
            return false;
        }
        adoptedByReplies.remove(instance.sagaId(), run); // a reply registered it meanwhile: reported here
        if (!transientThrown) { // a recovery's: a resumption waiting gives way, a failure from here is a streak anew
            StoreFailureResume resume = resumes.get(instance.sagaId());
            if (resume != null) {
                resume.endIfWaiting();
            }
        }
        run.drive();
        return true;
    }

    /**
     * With saga ownership, the other nodes whose heartbeat is after {@code leaseSince}: the store leaves their sagas
     * out of a recovery's pages. Empty without ownership. A node id holding U+0000 or a lone surrogate (as an earlier
     * version stored on H2), which {@link RecoveryQuery} refuses, is not asked to be left out: its sagas come in the
     * pages and are left alone by {@link #ownedByLiveNode}, as those of a node alive only after the query are.
     */
    private Set<String> liveOwners(Map<String, Instant> heartbeats, Instant leaseSince) {
        if (heartbeats == null) {
            return Set.of();
        }
        Set<String> live = new HashSet<>();
        heartbeats.forEach((node, last) -> {
            if (!node.equals(nodeId) && last.isAfter(leaseSince) && !StoredKeys.isUnstorable(node)) {
                live.add(node);
            }
        });
        return live;
    }

    /**
     * A run here that a recovery's second loop dropped (another orchestrator wrote its saga since) has its saga
     * treated as any saga not driven here, as when the pages hold it: it is read again and, when still unfinished,
     * reported left alone when it was updated within {@code idleFor} or belongs to another live node. It is adopted
     * by no recovery before the next one (it moved after this one's query). A failure to read it is only logged.
     */
    private void leftAloneAfterDrop(String sagaId, Instant idleSince, List<String> recentlyUpdated,
                                    List<String> ownedElsewhere) {
        SagaInstance current;
        try {
            current = store.find(sagaId).orElse(null);
        } catch (RuntimeException e) {
            log.debug("saga {}: dropped here, not read again: {}", sagaId, e.toString());
            return;
        }
        if (current == null || !current.status().isActive()) {
            return;
        }
        if (registry != null && ownedByLiveNode(current.owner(), registry.heartbeats(),
                idleSince(scheduler.clock().instant(), config.ownership().leaseTimeout()))) {
            ownedElsewhere.add(sagaId);
        } else if (idleSince != null && current.updatedAt().isAfter(idleSince)) {
            recentlyUpdated.add(sagaId);
        }
    }

    /**
     * {@link SagaRun#dropIfSuperseded}; when the store cannot be read for it, false, the saga added to
     * {@code unchecked} with the reason and the failure logged: the run stays driven here (nothing changed), the
     * recovery goes on with the other sagas, and the next one checks the run again.
     */
    private static boolean dropIfSuperseded(SagaRun<?> run, Map<String, String> unchecked) {
        String[] keys = run.enterLogContext(); // a recovery's check, outside a drive: its lines are about this saga
        try {
            return run.dropIfSuperseded();
        } catch (RuntimeException e) {
            log.warn("saga {}: driven here, but the store failed while checking whether another orchestrator wrote it"
                    + " since; it stays driven here and the next recovery checks it again: {}", run.sagaId(), e.toString());
            unchecked.putIfAbsent(run.sagaId(), "driven here, but the store failed while checking whether another"
                    + " orchestrator wrote it since (it stays driven here; the next recovery checks it again): " + e);
            return false;
        } finally {
            run.leaveLogContext(keys);
        }
    }

    /**
     * After a recovery, with saga ownership: removes the heartbeats it read that are at least the lease timeout old
     * (but this node's), so that those of nodes that crashed and never came back do not stay in the registry for
     * ever. A recovery reads such a heartbeat as it reads an absent one, so this changes no adoption; the removal is
     * conditional ({@link NodeRegistry#remove(String, Instant)}): a node that wrote a newer heartbeat since keeps it.
     * A failure is logged; the next recovery tries again.
     */
    private void removeExpiredHeartbeats(Map<String, Instant> heartbeats, Instant leaseSince) {
        for (Map.Entry<String, Instant> heartbeat : heartbeats.entrySet()) {
            String node = heartbeat.getKey();
            if (node.equals(nodeId) || heartbeat.getValue().isAfter(leaseSince)) {
                continue;
            }
            try {
                if (registry.remove(node, heartbeat.getValue())) {
                    log.info("saga ownership: removed the heartbeat of node {}, last written at {}, older than the"
                            + " lease", node, heartbeat.getValue());
                }
            } catch (RuntimeException e) {
                log.warn("saga ownership: the heartbeat of node {}, older than the lease, could not be removed; the next"
                        + " recovery tries again: {}", node, e.toString());
                return;
            }
        }
    }

    /**
     * Whether a saga of {@code owner} belongs to another live node: one whose last heartbeat is after
     * {@code leaseSince}. A saga without owner (written without ownership), this node's own (a restart under its id)
     * and one of a node without a heartbeat (closed) or with an older one (dead, or paused past its lease) is not.
     */
    private boolean ownedByLiveNode(String owner, Map<String, Instant> heartbeats, Instant leaseSince) {
        if (owner == null || owner.equals(nodeId)) {
            return false;
        }
        Instant last = heartbeats.get(owner);
        return last != null && last.isAfter(leaseSince);
    }

    /** {@code now - idleFor}, or the earliest instant for a longer one (such as {@code ChronoUnit.FOREVER}'s). */
    private static Instant idleSince(Instant now, Duration idleFor) {
        return idleFor.compareTo(Duration.between(Instant.MIN, now)) >= 0 ? Instant.MIN : now.minus(idleFor);
    }

    /**
     * Creates a run for a stored instance just read (migrating its data when needed), or null when impossible; then,
     * when it could not be migrated, {@code unmigrated} (if given) has why, by its id. {@code moved} non-null:
     * {@code instance} comes from a recovery's query, which a run here may have overtaken since (it finished, say, and
     * is no longer registered): once the new run is registered (no run here can write the saga any more), the store is
     * read again, and when it no longer holds the version the run was made from (and the run itself wrote nothing meanwhile), the run is stopped and dropped
     * ({@link SagaRun#dropIfMovedSinceRead}), the id added to {@code moved}, and null returned; so too, with saga
     * ownership, when another node's recovery migrated it first (and so adopted it). An instance whose stored state the
     * store could not read ({@link UnreadableSagaData}) is refused with a {@link SagaException}: a recovery reports it
     * unresolvable and reads on. {@code refusal} non-null: what it makes of the definition the saga is to run under
     * (migrated, say) is thrown before a run is registered, so that none is left here undriven, and a run another
     * caller registered meanwhile is left to it.
     */
    private SagaRun<?> adopt(SagaInstance instance, List<String> moved, Map<String, String> unmigrated,
                             Function<SagaDefinition<?>, SagaException> refusal) {
        if (instance.data() instanceof UnreadableSagaData unreadable) {
            // Before a migration, which would store what it made of the marker as the saga's data.
            throw new SagaException(instance.sagaId(), null, "its stored state cannot be read: " + unreadable.reason(),
                    null, false);
        }
        SagaDefinition<?> definition = registered(instance.sagaName(), instance.definitionVersion());
        SagaInstance current = instance;
        if (definition == null) {
            current = migrate(instance, unmigrated, refusal);
            if (current == null) {
                return null;
            }
            if (moved != null && registry != null && current.owner() != null && !current.owner().equals(nodeId)) {
                // Another node's recovery migrated it first, so adopted it, and drives it without a further write
                // that would stop a second driver here: it moved.
                log.debug("saga {}: migrated and adopted by node {} first; left to it", instance.sagaId(), current.owner());
                moved.add(instance.sagaId());
                return null;
            }
            definition = registered(current.sagaName(), current.definitionVersion());
        }
        requireStepsOf(definition, current);
        SagaException refused = refusal != null ? refusal.apply(definition) : null;
        if (refused != null) {
            throw refused;
        }
        if (stepStates(definition).usesBus) {
            subscribeReplies();
        }
        SagaRun<?> run = newRun(definition, current);
        boolean byReply = refusal != null;
        if (byReply) { // before it is registered: a recovery that finds it registered reports it
            adoptedByReplies.put(current.sagaId(), run);
        }
        SagaRun<?> existing = runs.putIfAbsent(current.sagaId(), run);
        if (existing != null) {
            if (byReply) {
                adoptedByReplies.remove(current.sagaId(), run);
            }
            return existing;
        }
        if (closed) { // close() ran since it was read and did not see this run: it would never be stopped
            runs.remove(current.sagaId(), run);
            adoptedByReplies.remove(current.sagaId(), run);
            ensureOpen();
        }
        if (moved != null && run.dropIfMovedSinceRead(current.version())) { // stopped: a caller may hold its result
            moved.add(current.sagaId());
            return null;
        }
        return run;
    }

    /**
     * Refuses an instance whose step states are not one per step of {@code definition}, in its order (a definition
     * whose steps changed without a new version, or states edited by hand): a run reads them by the step's index, so
     * it would fail, or drive the wrong steps. Refused before the run exists, the saga stays untouched in the store.
     */
    private static void requireStepsOf(SagaDefinition<?> definition, SagaInstance instance) {
        List<? extends SagaStep<?>> steps = definition.steps();
        List<StepState> states = instance.steps();
        boolean match = steps.size() == states.size();
        for (int i = 0; match && i < steps.size(); i++) {
            match = steps.get(i).name().equals(states.get(i).name());
        }
        if (!match) {
            throw new SagaException(instance.sagaId(), null, "its stored step states "
                    + states.stream().map(StepState::name).toList() + " are not those of the steps of '"
                    + definition.name() + "' version " + definition.version() + " "
                    + steps.stream().map(SagaStep::name).toList() + " (a definition changed without a new version?)",
                    null, false);
        }
    }

    private <D> SagaRun<D> newRun(SagaDefinition<D> definition, SagaInstance instance) {
        return new SagaRun<>(this, definition, instance, toData(definition, instance.data()));
    }

    /** {@code raw}, saga data as a store gives it back (the object, or its JSON tree), bound to the definition's class. */
    <D> D dataOf(SagaDefinition<D> definition, Object raw) {
        return toData(definition, raw);
    }

    private <D> D toData(SagaDefinition<D> definition, Object raw) {
        if (definition.dataClass().isInstance(raw)) {
            return definition.dataClass().cast(raw);
        }
        try {
            if (raw instanceof JsonNode tree) {
                return config.mapper().treeToValue(tree, definition.dataClass());
            }
            return config.mapper().convertValue(raw, definition.dataClass());
        } catch (Exception e) {
            throw new SagaException(null, null, "saga data of type '" + definition.dataType() + "' cannot be read as "
                    + definition.dataClass().getName() + ": " + e.getMessage(), e, false);
        }
    }

    /**
     * Upcasts an instance whose definition version is gone to the newest registered version, if a chain exists, and
     * stores the migration; null when it cannot be migrated, or another orchestrator migrated it to a state that is
     * not resumed here, why put in {@code unmigrated} (if given) by its id. {@code refusal} non-null (a reply's, see
     * {@link #adopt}): what it makes of the version the saga would be migrated to is thrown before the migration is stored, so that a refused
     * reply leaves the saga as it was, not taken over by this node (its driver elsewhere would lose its next write).
     */
    private SagaInstance migrate(SagaInstance instance, Map<String, String> unmigrated,
                                 Function<SagaDefinition<?>, SagaException> refusal) {
        Upcast upcast = upcast(instance);
        if (upcast.migrated() == null) {
            log.error("saga {}: {}; it stays in the store", instance.sagaId(), upcast.refusal(), upcast.cause());
            if (unmigrated != null) {
                unmigrated.putIfAbsent(instance.sagaId(), upcast.refusal());
            }
            return null;
        }
        SagaException refused = refusal == null ? null
                : refusal.apply(registered(upcast.migrated().sagaName(), upcast.migrated().definitionVersion()));
        if (refused != null) {
            throw refused;
        }
        SagaInstance stored = storeMigration(instance, upcast.migrated());
        if (stored == null && unmigrated != null) {
            unmigrated.putIfAbsent(instance.sagaId(), "another orchestrator migrated it first, to a state not resumed"
                    + " here");
        }
        return stored;
    }

    /**
     * What {@link #upcast} made of a saga: the migrated instance, or why it cannot be migrated (the refusal, and the
     * exception that stopped it, if any): recover() logs it, an operator call is refused with it.
     */
    private record Upcast(SagaInstance migrated, String refusal, RuntimeException cause) {
        static Upcast refused(String refusal) {
            return new Upcast(null, refusal, null);
        }
    }

    /**
     * The instance upcast to the newest registered version of its definition (steps matched by name), not stored
     * yet; or refused when no upcaster chain leads there, a step it ran no longer exists, or the new version would
     * have it go back past its pivot.
     */
    private Upcast upcast(SagaInstance instance) {
        TreeMap<Integer, SagaDefinition<?>> versions = definitions.get(instance.sagaName());
        Map<Integer, SagaDataUpcaster> chain = config.upcasters().getOrDefault(instance.sagaName(), Map.of());
        if (versions == null || versions.isEmpty()) {
            return Upcast.refused("no definition named '" + instance.sagaName() + "' is registered");
        }
        SagaDefinition<?> target;
        synchronized (versions) {
            target = versions.lastEntry().getValue();
        }
        if (target.version() <= instance.definitionVersion()) {
            return Upcast.refused("definition '" + instance.sagaName() + "' version " + instance.definitionVersion()
                    + " is not registered, nor a later one");
        }
        for (int v = instance.definitionVersion(); v < target.version(); v++) {
            if (!chain.containsKey(v)) {
                return Upcast.refused("'" + instance.sagaName() + "' version " + instance.definitionVersion()
                        + " is not registered and no upcaster migrates its data from version " + v);
            }
        }
        List<StepState> steps = new ArrayList<>();
        for (SagaStep<?> step : target.steps()) {
            steps.add(instance.step(step.name()).orElse(StepState.pending(step.name())));
        }
        for (StepState old : instance.steps()) {
            boolean kept = target.steps().stream().anyMatch(s -> s.name().equals(old.name()));
            if (!kept && old.status() != StepStatus.PENDING) {
                return Upcast.refused("step '" + old.name() + "' (" + old.status() + ") no longer exists in '"
                        + target.name() + "' version " + target.version());
            }
        }
        // Past its pivot a saga goes forward only: a compensatable step the new version adds (before the pivot) would
        // run after it, and its failure compensate the steps the pivot made final.
        boolean pastPivot = false;
        for (int i = 0; i < steps.size(); i++) {
            StepRole role = target.steps().get(i).role();
            StepStatus status = steps.get(i).status();
            pastPivot |= role == StepRole.PIVOT && status == StepStatus.SUCCEEDED
                    || role == StepRole.RETRIABLE && status != StepStatus.PENDING;
        }
        for (int i = 0; pastPivot && i < steps.size(); i++) {
            if (target.steps().get(i).role() == StepRole.COMPENSATABLE && steps.get(i).status() == StepStatus.PENDING) {
                return Upcast.refused("it is past its pivot, and '" + target.name() + "' version " + target.version()
                        + " adds the compensatable step '" + target.steps().get(i).name()
                        + "', which it would run after the pivot");
            }
        }
        JsonNode tree = instance.data() instanceof JsonNode node ? node.deepCopy() : config.mapper().valueToTree(instance.data());
        if (!(tree instanceof ObjectNode objectTree)) {
            return Upcast.refused("its data is not a JSON object; it cannot be upcast");
        }
        ObjectNode upcast = objectTree;
        for (int v = instance.definitionVersion(); v < target.version(); v++) {
            try {
                upcast = chain.get(v).upcast(upcast);
            } catch (RuntimeException e) { // the application's code: an operator call gets a SagaException carrying it
                return new Upcast(null, "the upcaster of '" + instance.sagaName() + "' from version " + v + " threw "
                        + e, e);
            }
            if (upcast == null) { // no tree: bound, it would be null data, which no start accepts
                return Upcast.refused("the upcaster of '" + instance.sagaName() + "' from version " + v
                        + " returned no data");
            }
        }
        Object data = toData(target, upcast);
        return new Upcast(new SagaInstance(instance.sagaId(), instance.sagaName(), target.version(),
                instance.businessKey(), target.dataType(), data, instance.status(), steps, instance.failure(),
                instance.compensationFailure(), instance.createdAt(), now(), instance.version() + 1, nodeId), null, null);
    }

    /**
     * Stores {@code migrated} (from {@link #upcast}) over {@code instance} with a {@code SAGA_MIGRATED} transition.
     * Returns it, or when another orchestrator got there first the active instance it stored (if registered here),
     * else null.
     */
    private SagaInstance storeMigration(SagaInstance instance, SagaInstance migrated) {
        try {
            store.update(migrated, new SagaTransition(instance.sagaId(), migrated.version(), migrated.updatedAt(),
                    TransitionType.SAGA_MIGRATED, null, 0,
                    "version " + instance.definitionVersion() + " -> " + migrated.definitionVersion()));
        } catch (ConcurrentSagaUpdateException e) {
            // Another recover() (here or in another process) got there first: resume what it stored, if it can be.
            SagaInstance stored = store.find(instance.sagaId()).orElse(null);
            if (stored != null && stored.status().isActive()
                    && registered(stored.sagaName(), stored.definitionVersion()) != null) {
                log.debug("saga {}: migrated concurrently; resuming its stored version {}", instance.sagaId(), stored.version());
                return stored;
            }
            // Two nodes recovering the same saga at once is normal operation (a rolling deploy, recoverEvery on each
            // node), as a run's write lost to another node is (SagaRun.movedOn): INFO, with what the winner stored.
            if (stored == null) {
                log.info("saga {}: migrated concurrently by another node, finished and purged there; not resumed here",
                        instance.sagaId());
            } else {
                log.info("saga {}: migrated concurrently by another node{}: stored {} at version {} (definition version"
                        + " {}); not resumed here", instance.sagaId(), stored.owner() == null ? "" : " (owner "
                        + stored.owner() + ")", stored.status(), stored.version(), stored.definitionVersion());
            }
            return null;
        }
        return migrated;
    }

    // ---------------------------------------------------------------- replies

    private void onReply(Message message) {
        if (closed) {
            throw new SagaException(message.sagaId().orElse(null), null, "orchestrator closed", null, true);
        }
        String sagaId = message.sagaId().orElse(null);
        String stepName = message.header(SagaMessages.STEP).orElse(null);
        if (sagaId == null || sagaId.isBlank() || stepName == null || stepName.isBlank()) {
            // Not lost: a non-retriable failure dead-letters the message with this reason.
            throw new SagaException(sagaId, stepName, "reply " + quote(message.id()) + " lacks the " + MessageHeaders.SAGA_ID
                    + " or " + SagaMessages.STEP + " header", null, false);
        }
        SagaRun<?> run = runs.get(sagaId);
        SagaInstance stored = run != null ? null : store.find(sagaId).orElse(null);
        if (run == null && stored == null) {
            throw new SagaException(sagaId, stepName, "reply " + quote(message.id()) + " for unknown saga " + quote(sagaId), null, false);
        }
        if (!logContext) { // the common path: no name read, no MDC work
            onReply(message, sagaId, stepName, run, stored);
            return;
        }
        // What is logged of the reply (ignored, taken over) is about this saga: its keys, as in a drive
        String[] keys = LogContext.putSaga(sagaId, run != null ? run.definition.name() : stored.sagaName(), null);
        try {
            onReply(message, sagaId, stepName, run, stored);
        } finally {
            LogContext.restoreSaga(keys);
        }
    }

    /** {@link #onReply(Message)} for a saga known: {@code run} driven here, or else {@code stored}. */
    private void onReply(Message message, String sagaId, String stepName, SagaRun<?> run,
                         SagaInstance stored) {
        if (run == null) {
            if (!stored.status().isActive()) {
                log.debug("saga {}: ignoring reply {} for a saga in status {}", sagaId, message.id(), stored.status());
                return;
            }
            if (answersAnotherSaga(message, sagaId, stored.createdAt())) {
                ignoreAnotherSagasReply(message, sagaId, stored.createdAt());
                return; // nor does it make this orchestrator take the saga over
            }
            // A reply for a step that moved on (or of an attempt a retry superseded) is ignored, and must not make this
            // orchestrator take the saga over.
            boolean compensation = message.header(SagaMessages.PHASE).filter(SagaMessages.COMPENSATION::equals).isPresent();
            StepStatus awaited = compensation ? StepStatus.COMPENSATING : StepStatus.WAITING;
            StepState state = stored.step(stepName).orElse(null);
            StepStatus current = state == null ? awaited : state.status();
            if (current != awaited) {
                log.debug("saga {}: ignoring reply {} for step {} in status {}", sagaId, message.id(), stepName, current);
                return;
            }
            if (state != null && SagaRun.ofAnEarlierAttempt(message, compensation ? state.compensationAttempts() : state.attempts())) {
                log.debug("saga {}: ignoring reply {} of a superseded attempt of step {}", sagaId, message.id(), stepName);
                return;
            }
            // Refused before a run is registered (under the version it was migrated to, say): a run adopted here and
            // never driven would keep the saga from every recovery of this orchestrator (it drives it, as far as they
            // can tell), its timeout never armed; and one a recovery registered meanwhile is driven, not to be dropped.
            // Why it could not be migrated here: the dead letter this reply may become names the version to register.
            Map<String, String> unmigrated = new HashMap<>(1);
            run = adopt(stored, null, unmigrated, definition -> refusal(definition, sagaId, stepName, message));
            if (run == null) {
                String why = unmigrated.get(sagaId);
                throw new SagaException(sagaId, stepName, "reply " + quote(message.id()) + " for saga " + quote(sagaId)
                        + " whose definition is not registered" + (why == null ? "" : " here: " + why), null, true);
            }
        } else if (answersAnotherSaga(message, sagaId, run.createdAt())) {
            ignoreAnotherSagasReply(message, sagaId, run.createdAt());
            return;
        }
        deliver(run, stepName, message);
    }

    /**
     * Acknowledges {@code reply} to a command of another saga under the id than the one started at {@code createdAt} (one
     * purged before it): its outcome is that saga's, not this one's, whose step of the same name and attempt waits for
     * its own reply.
     */
    private void ignoreAnotherSagasReply(Message reply, String sagaId, Instant createdAt) {
        if (startMatchesOnlyToTheMillisecond(reply, sagaId, createdAt)) {
            // Not taken even so: an engine lenient here would still derive other message ids after every read-back.
            log.warn("saga {}: ignoring reply {} to command {}, of a saga started within the millisecond of this saga's stored"
                    + " start {} but not at it: the saga store {} seems to keep a saga's createdAt to the millisecond, not to"
                    + " the microsecond as SagaStore requires (docs/durability.md), so replies to this saga's commands are"
                    + " taken for another saga's and its steps wait for their timeouts", sagaId, reply.id(),
                    reply.causationId().orElse(null), createdAt, store.getClass().getName());
            return;
        }
        log.info("saga {}: ignoring reply {} to command {} of another saga under this id, not of the saga started at {}",
                sagaId, reply.id(), reply.causationId().orElse(null), createdAt);
    }

    /** Why {@code definition}'s step {@code stepName} cannot take {@code message} as its reply, or null when it can. */
    private static SagaException refusal(SagaDefinition<?> definition, String sagaId, String stepName, Message message) {
        SagaStep<?> step = null;
        for (SagaStep<?> candidate : definition.steps()) { // a loop, not a stream: every reply passes here
            if (candidate.name().equals(stepName)) {
                step = candidate;
                break;
            }
        }
        if (step == null) {
            return new SagaException(sagaId, stepName, "reply " + quote(message.id()) + " for step " + quote(stepName)
                    + " which saga '" + definition.name() + "' v" + definition.version() + " does not have", null, false);
        }
        if (message.header(SagaMessages.PHASE).filter(SagaMessages.COMPENSATION::equals).isPresent()) {
            return step.remoteCompensation().isPresent() ? null : new SagaException(sagaId, stepName, "compensation reply "
                    + quote(message.id()) + " for step '" + stepName + "' which has no remote compensation", null, false);
        }
        return step.isRemote() ? null : new SagaException(sagaId, stepName, "reply " + quote(message.id()) + " for step '"
                + stepName + "' which is not a remote step", null, false);
    }

    private <D> void deliver(SagaRun<D> run, String stepName, Message message) {
        SagaException refused = refusal(run.definition, run.sagaId(), stepName, message);
        if (refused != null) {
            throw refused;
        }
        SagaStep<D> step = run.definition.step(stepName);
        long takenAt;
        try {
            takenAt = message.header(SagaMessages.PHASE).filter(SagaMessages.COMPENSATION::equals).isPresent()
                    ? run.onCompensationReply(step, message) : run.onReply(step, message);
        } catch (SagaException notTaken) {
            // The reply refused (dead-lettered), the saga untouched: a run adopted for it is driven all the same, so
            // that its wait's timeout is armed and this orchestrator's recoveries do not take it for one driven here.
            run.drive();
            throw notTaken;
        }
        run.drive();
        if (run.stoppedUnfinished()) {
            SagaException refusedTwice = run.refusedTwiceReason(takenAt);
            if (refusedTwice != null) {
                // The store refused the reply's outcome and then the saga's needs-attention write: delivered again, the
                // reply goes to the saga as stored and meets the same refusals, so it is dead-lettered now, naming them.
                // Not so for a later write's refusals (the reply's outcome stored): delivered again, it is ignored.
                throw new SagaException(run.sagaId(), stepName, "reply " + quote(message.id()) + " not handled: "
                        + refusedTwice.getMessage(), refusedTwice, false);
            }
            // The run stopped (its store failed, another orchestrator took over, an Error): the reply's outcome may
            // not be stored, so it is not acknowledged. Delivered again, it goes to the saga as stored then. A run that
            // finished as it stopped (the store refused the reply's outcome: the saga is stored needing attention) took
            // the reply, as it takes one whose handler throws.
            throw new SagaException(run.sagaId(), stepName, "reply " + quote(message.id()) + " not handled: saga " + quote(run.sagaId())
                    + " stopped while it was delivered", null, true);
        }
    }

    // ---------------------------------------------------------------- callbacks from runs

    /* Each event is published before the listeners hear of its transition: a listener may cancel the saga, and the
       events of that must follow this one. */

    void onStepCompleted(SagaInstance instance, String step) {
        publish(instance, "step-completed", step, null);
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onStepCompleted(instance, step));
        }
    }

    void onStepFailed(SagaInstance instance, String step, SagaFailure failure) {
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onStepFailed(instance, step, failure));
        }
    }

    void onCompensationStarting(SagaInstance instance) {
        publish(instance, "compensating", null, instance.failure());
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onCompensationStarting(instance));
        }
    }

    void onStepCompensated(SagaInstance instance, String step) {
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onStepCompensated(instance, step));
        }
    }

    void onCompleted(SagaInstance instance) {
        publish(instance, "completed", null, null);
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onCompleted(instance));
        }
    }

    void onCompensated(SagaInstance instance) {
        publish(instance, "compensated", null, instance.failure());
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onCompensated(instance));
        }
    }

    void onFailed(SagaInstance instance) {
        publish(instance, "failed", null, attentionFailure(instance));
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onFailed(instance));
        }
    }

    /**
     * An operator's retryCompensation sent the saga forward again (RUNNING): it no longer needs attention; the event names
     * {@code retriedAfter}, what it needed attention for, which the saga, running, no longer holds.
     */
    void onRetried(SagaInstance instance, SagaFailure retriedAfter) {
        publish(instance, "retried", null, retriedAfter);
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onRetried(instance, retriedAfter));
        }
    }

    /**
     * An operator resolved the saga (markResolved): a lifecycle consumer whose last event of it was {@code failed}
     * learns that it no longer needs attention; then the listeners hear of it.
     */
    void onResolved(SagaInstance instance) {
        publish(instance, "resolved", null, attentionFailure(instance));
        if (!config.listeners().isEmpty()) {
            notify(l -> l.onResolved(instance));
        }
    }

    /** What a saga needing attention (or resolved from it) failed on: its compensation's failure, else its step's. */
    private static SagaFailure attentionFailure(SagaInstance instance) {
        return instance.compensationFailure() != null ? instance.compensationFailure() : instance.failure();
    }

    /** {@code instance}: the run's final state, as just stored. */
    void onFinished(SagaRun<?> run, SagaInstance instance, SagaOutcome outcome) {
        runs.remove(instance.sagaId(), run);
        forgetAdoption(run);
        String tag = switch (outcome) {
            case COMPLETED -> "completed";
            case COMPENSATED -> "compensated";
            case RESOLVED -> "resolved";
            case FAILED_NEEDS_ATTENTION -> "failed";
        };
        if (config.metrics() != MetricsRecorder.NOOP) { // the Duration is the only allocation of a finish otherwise
            // Guarded: what it throws is logged and ignored; the saga finished, its result completes all the same.
            config.metrics().sagaFinished(instance.sagaName(), tag, Duration.between(instance.createdAt(), instance.updatedAt()));
        }
    }

    void detach(SagaRun<?> run) {
        runs.remove(run.sagaId(), run);
        forgetAdoption(run);
    }

    /** A run no longer registered is no longer driven here: no recovery is to report it (see adoptedByReplies). */
    private void forgetAdoption(SagaRun<?> run) {
        if (!adoptedByReplies.isEmpty()) { // a size check on the common path, where it is always empty
            adoptedByReplies.remove(run.sagaId(), run);
        }
    }

    private void notify(Consumer<SagaListener> call) {
        // Callers pass capturing lambdas; with no listener that allocation is the only cost left.
        for (SagaListener listener : config.listeners()) {
            try {
                call.accept(listener);
            } catch (VirtualMachineError | SimulatedProcessCrash | ThreadDeath e) {
                // The process is dying (or a test says so), or the thread is stopped (Thread.stop, whose ThreadDeath a
                // catcher must rethrow): the run stops as for any Error while driven
                throw e;
            } catch (Exception e) { // also a checked one (a Kotlin listener, a sneaky throw)
                log.warn("saga listener {} failed: {}", listener, e.toString());
            } catch (Error e) { // a bug in the listener (an AssertionError, say) must not change the saga's course
                log.error("saga listener {} failed: {}", listener, e.toString());
            }
        }
    }

    private Message.Builder lifecycleBuilder(SagaInstance instance, String event, String step, String error,
                                             boolean encoded) {
        Object payload = new SagaLifecycleEvent(instance.sagaId(), instance.sagaName(), event, step, instance.status(),
                error);
        Message.Builder builder = Message.builder(config.lifecycleTopic());
        return (encoded ? inheritingHandled(builder) : builder)
                .key(instance.sagaId())
                .type(SagaLifecycleEvent.TYPE)
                .payload(encoded ? config.bus().codec().encode(payload) : payload)
                .header(MessageHeaders.SAGA_ID, instance.sagaId());
    }

    private void publish(SagaInstance instance, String event, String step, SagaFailure failure) {
        // With transactional messages the store wrote the event with its transition (lifecycleMessage).
        if (config.lifecycleTopic() == null || transactionalMessages) {
            return;
        }
        Message message = lifecycleBuilder(instance, event, step, failure == null ? null : failure.toString(), false)
                .timestamp(now()).build();
        DefaultEventBus.publishOutsideDelivery(config.bus(), message).whenComplete((position, error) -> {
            if (error != null) { // on the transport's thread, perhaps: the saga's keys put here
                String[] keys = enterSaga(instance.sagaId(), instance.sagaName());
                try {
                    log.warn("saga {}: lifecycle event '{}' could not be published: {}", instance.sagaId(), event,
                            error.toString());
                } finally {
                    leaveSaga(keys);
                }
            }
        });
    }

    // ---------------------------------------------------------------- operator API

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public CompletionStage<SagaResult<Object>> result(String sagaId) {
        SagaRun<?> run = runs.get(sagaId);
        if (run != null) {
            return (CompletionStage) run.pendingResult();
        }
        SagaInstance instance = store.find(sagaId).orElseThrow(() -> SagaException.notFound(sagaId));
        if (instance.status().isActive()) {
            return CompletableFuture.failedFuture(SagaException.illegalState(sagaId, null,
                    "the saga is " + instance.status() + " but not driven by this orchestrator; call recover() first"));
        }
        SagaOutcome outcome = switch (instance.status()) {
            case COMPLETED -> SagaOutcome.COMPLETED;
            case COMPENSATED -> SagaOutcome.COMPENSATED;
            case RESOLVED -> SagaOutcome.RESOLVED;
            default -> SagaOutcome.FAILED_NEEDS_ATTENTION;
        };
        SagaDefinition<?> definition = registered(instance.sagaName(), instance.definitionVersion());
        Object data = definition == null ? instance.data() : toData(definition, instance.data());
        return CompletableFuture.completedFuture(new SagaResult<>(sagaId, outcome, data, instance.failure(),
                instance.compensationFailure(), null, instance.definitionVersion()));
    }

    @Override
    public void cancel(String sagaId) {
        ensureOpen();
        runFor(sagaId, SagaRun::requireCancellable).cancel();
    }

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public CompletionStage<SagaResult<Object>> retryCompensation(String sagaId) {
        ensureOpen();
        return (CompletionStage) operate(sagaId, SagaRun::requireNeedsAttention, SagaRun::retryFailed);
    }

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public CompletionStage<SagaResult<Object>> skipCompensation(String sagaId, String step) {
        ensureOpen();
        return (CompletionStage) operate(sagaId, r -> r.requireSkippable(step), r -> r.skip(step));
    }

    @Override
    public void markResolved(String sagaId) {
        ensureOpen();
        operate(sagaId, SagaRun::requireNeedsAttention, r -> r.resolve() ? r : null);
    }

    /**
     * Makes an operator {@code call} on the saga's run ({@link #runFor}) and returns what it returns; when the run it
     * found registered finished while the call waited for its lock (needing attention, or as the store refused its
     * write: the saga is stored needing attention, the run unregistered), the call returns null having done nothing,
     * and is made on a run over the stored saga.
     */
    private <T> T operate(String sagaId, Consumer<SagaRun<?>> check, Function<SagaRun<?>, T> call) {
        SagaRun<?> run = runFor(sagaId, check);
        T made;
        while ((made = call.apply(run)) == null) {
            run = runFor(sagaId, check);
        }
        return made;
    }

    /**
     * The run driven here, or a new one over the stored instance (needs-attention sagas are not driven). A new
     * run is registered only once it passes {@code check} (the operator call's own state check): a refused call
     * must leave no undriven run behind, which recover() would skip and whose result() would never complete.
     */
    private SagaRun<?> runFor(String sagaId, Consumer<SagaRun<?>> check) {
        SagaRun<?> run = runs.get(sagaId);
        if (run != null) {
            return run;
        }
        SagaInstance instance = store.find(sagaId).orElseThrow(() -> SagaException.notFound(sagaId));
        // A migration's lines (refused, or made concurrently elsewhere) are about this saga: its keys, as in a drive
        String[] keys = enterSaga(sagaId, instance.sagaName());
        try {
            return runFor(instance, check);
        } finally {
            leaveSaga(keys);
        }
    }

    private SagaRun<?> runFor(SagaInstance instance, Consumer<SagaRun<?>> check) {
        String sagaId = instance.sagaId();
        SagaDefinition<?> definition = registered(instance.sagaName(), instance.definitionVersion());
        SagaInstance migrated = null;
        if (definition == null) {
            // Its version is gone (an upgrade): migrated as recover() would, but stored only once the call is allowed.
            Upcast upcast = upcast(instance);
            if (upcast.migrated() == null) {
                throw new SagaException(sagaId, null, "saga " + SagaException.quote(sagaId) + ": its definition '"
                        + instance.sagaName() + "' version " + instance.definitionVersion() + " is not registered with"
                        + " this orchestrator, and it cannot be migrated to a registered version: " + upcast.refusal(),
                        upcast.cause(), false);
            }
            migrated = upcast.migrated();
            definition = registered(migrated.sagaName(), migrated.definitionVersion());
        }
        SagaRun<?> created = newRun(definition, migrated != null ? migrated : instance);
        check.accept(created);
        created.createdForACall(); // nobody waits on it: a refused call stops it rather than putting it back
        if (migrated != null && storeMigration(instance, migrated) != migrated) {
            throw new ConcurrentSagaUpdateException(sagaId, instance.version(), migrated.version());
        }
        SagaRun<?> existing = runs.putIfAbsent(sagaId, created);
        return existing != null ? existing : created;
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        return store.find(sagaId);
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        return store.findByBusinessKey(businessKey);
    }

    @Override
    public List<SagaInstance> findByStatus(SagaStatus... statuses) {
        ConfigurationException.require(statuses.length > 0, "findByStatus needs at least one status");
        for (SagaStatus status : statuses) {
            ConfigurationException.require(status != null, "findByStatus needs statuses, but was given %s",
                    java.util.Arrays.toString(statuses));
        }
        return store.findByStatus(EnumSet.of(statuses[0], statuses));
    }

    @Override
    public SagaPage findByBusinessKey(String businessKey, SagaPageRequest page) {
        ConfigurationException.require(businessKey != null, "businessKey must not be null, but was %s", businessKey);
        return page(EnumSet.allOf(SagaStatus.class), businessKey, null, page);
    }

    @Override
    public SagaPage findByStatus(Set<SagaStatus> statuses, SagaPageRequest page) {
        return page(statuses, null, null, page);
    }

    @Override
    public Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses) {
        // checked as a query's statuses are, with its message: at least one, no null
        return store.countByStatus(new SagaQuery(statuses, null, null, null, 1).statuses());
    }

    @Override
    public Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses) {
        // checked as countByStatus's: at least one, no null
        return store.countBySagaAndStatus(new SagaQuery(statuses, null, null, null, 1).statuses());
    }

    @Override
    public SagaPage findIdleLongerThan(Duration idleFor, SagaPageRequest page) {
        Duration threshold = ConfigurationException.requireAge(idleFor, "idleFor");
        return page(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING), null, idleSince(now(), threshold), page);
    }

    /**
     * One page of the store's {@link SagaStore#findPage}, asked for one saga more than the page holds: whether there
     * is a next page is then known, not guessed from a full page.
     */
    private SagaPage page(Set<SagaStatus> statuses, String businessKey, Instant updatedBefore, SagaPageRequest page) {
        ConfigurationException.require(page != null, "page must not be null, but was %s", page);
        RecoveryQuery.Position after = page.afterSagaId() == null ? null
                : new RecoveryQuery.Position(page.afterCreatedAt(), page.afterSagaId());
        List<SagaInstance> found = store.findPage(new SagaQuery(statuses, businessKey, updatedBefore, after,
                page.size() + 1));
        if (found.size() <= page.size()) {
            return new SagaPage(found, null);
        }
        List<SagaInstance> sagas = found.subList(0, page.size());
        return new SagaPage(sagas, SagaPageRequest.after(sagas.get(sagas.size() - 1), page.size()));
    }

    @Override
    public List<SagaInstance> findUnfinishedLongerThan(Duration age) {
        Duration threshold = ConfigurationException.requireAge(age, "age");
        return store.findActiveCreatedBefore(idleSince(now(), threshold));
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        return store.history(sagaId);
    }

    @Override
    public String sequenceDiagram(String sagaId) {
        SagaInstance instance = store.find(sagaId).orElseThrow(() -> SagaException.notFound(sagaId));
        return SagaDiagrams.sequence(instance.sagaName(), store.history(sagaId));
    }

    @Override
    public int purgeFinished() {
        return store.deleteFinishedBefore(now().minus(config.retention()));
    }

    @Override
    public void close() {
        shutDown(removal -> log.warn("saga ownership: node {}'s heartbeat could not be removed; the other nodes adopt"
                + " its sagas once its lease runs out: {}", nodeId, removal.toString()));
    }

    /**
     * close(), and the constructor's undoing of what it did before it failed; a heartbeat removal that fails is handed
     * to {@code removalFailed}.
     */
    private void shutDown(Consumer<RuntimeException> removalFailed) {
        // The replies first, while the runs are still driven: a reply delivered meanwhile is handled, one not yet
        // delivered stays on the topic for the group's next orchestrator. A reply failed because the orchestrator
        // is closed could be dead-lettered, and a waiting step whose command recovery does not re-send (an outbox)
        // would then wait for it forever.
        // Read under the lock of subscribeReplies(): one in progress (a start() racing this) is waited for and
        // closed here, and a later one refused, rather than left active after this returned.
        Subscription subscription;
        synchronized (subscriptionLock) {
            subscription = replies;
            repliesClosed = true;
        }
        if (subscription != null) {
            subscription.close();
        }
        closed = true;
        repeating.forEach(Scheduler.Cancellable::cancel);
        // One wait in all for a timer stuck longer than it, not one here and one again in the own scheduler's close.
        // The scheduler's closeWait() (the own one's, when it has one), as the scope over it read and checked it.
        long deadline = System.nanoTime() + repeatingScope.closeWait().toNanos();
        // Before the runs stop: a recovery sweep running now may still adopt a saga, which is then stopped below.
        repeatingScope.closeBy(deadline);
        for (SagaRun<?> run : runs.values()) {
            run.stop(new SagaException(run.sagaId(), null, "orchestrator closed; the saga resumes on recover()", null, true));
        }
        runs.clear();
        adoptedByReplies.clear();
        warnOfResumptionsLeft();
        resumes.clear(); // their tasks were cancelled with the scope
        if (registry != null) {
            // After the runs stopped (none writes any more): the other nodes adopt its sagas at their next recovery.
            synchronized (heartbeatLock) {
                try {
                    registry.remove(nodeId);
                } catch (RuntimeException e) {
                    removalFailed.accept(e);
                }
            }
        }
        clock.close();
        if (ownScheduler != null) {
            ownScheduler.closeBy(deadline);
        }
        synchronized (this) {
            if (ownParallelExecutor != null) {
                ownParallelExecutor.shutdownNow(); // a member still running is abandoned: recover() re-runs it
            }
        }
    }

    /**
     * close(): the sagas whose resumption after a store failure had not resumed them, its try cancelled now (or dropped
     * before, by a scheduler closed before this orchestrator) or cut short by this close, stay as stored until a
     * recovery: one WARN names them (the first 20).
     */
    private void warnOfResumptionsLeft() {
        List<String> waiting = new ArrayList<>();
        resumes.forEach((sagaId, resume) -> {
            if (resume.waiting()) {
                waiting.add(sagaId);
            }
        });
        if (!waiting.isEmpty()) {
            log.warn("saga orchestrator closed before it resumed {} saga(s) a store failure stopped; recover() resumes"
                    + " them: {}", waiting.size(), waiting.size() <= 20 ? waiting : waiting.subList(0, 20) + " and "
                    + (waiting.size() - 20) + " more");
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new SagaException(null, null, "the orchestrator is closed", null, false);
        }
    }
}
