package io.streamsaga.saga;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.StreamSagaException;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.internal.SystemScheduler;
import io.streamsaga.saga.internal.DefaultSagaOrchestrator;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.spi.StoredKeys;
import io.streamsaga.time.Scheduler;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.CompletionStage;
import java.util.random.RandomGenerator;

/**
 * Runs sagas: executes steps, persists every transition to the {@link SagaStore} before acting on it,
 * compensates completed steps in reverse order on failure, and resumes unfinished sagas after a restart
 * ({@link #recover()}).
 *
 * <p>Local synchronous steps run on the caller's thread with no thread hop; asynchronous actions, remote
 * replies, timeouts and retry backoff continue on the thread that completes them (the action's executor,
 * the bus consumer, the scheduler). Thread-safe.
 *
 * <p>An {@link Error} (not an Exception: an {@code AssertionError}, a {@code StackOverflowError}) thrown by an
 * action, compensation or reply handler on the thread that drives the saga is not retried: the saga stops as
 * if the process died there and the Error propagates to that thread (from {@code start}, an operator call or
 * the reply's delivery). The store keeps the step as in flight, as after a crash: {@link #recover()} resumes
 * the saga (re-running that action or compensation), and until then {@link #result(String)} says so. An Error
 * from the store while it writes a transition stops the saga the same way; it propagates to the thread that
 * drives the saga also when it writes the outcome of an asynchronous action or compensation whose stage was
 * already complete when returned (as for a synchronous one). An Error that completes an asynchronous action's
 * stage (or a parallel member's) is a failed attempt like an exception.
 *
 * <p>A store failure (an exception) at a transition's write stops the saga's run too, its result failing with a
 * retriable {@link SagaException}; this orchestrator then resumes the saga itself, as {@link #recover()} would, after a
 * backoff of 1 s doubling to 1 min while the store keeps failing, unless the saga is driven here again, finished, or
 * another orchestrator's meanwhile (with {@link Builder#ownership}, a live node's; without, written by another since),
 * or the orchestrator closes.
 */
public interface SagaOrchestrator extends AutoCloseable {

    /**
     * Starts a saga of {@code definition} with a random id and no business key. A null definition, or data that
     * is null or not of the definition's data class, is refused with a {@link ConfigurationException} (by every
     * {@code start}), and so is, at the first start of a definition not registered with the builder, one whose remote
     * step or compensation waits for a reply of a class the bus's codec cannot decode to, or declares commands of a class
     * the bus's {@code TypeRegistry} does not register (as {@link Builder#build} refuses a registered one). With saga
     * ownership, a definition version with a remote step or compensation that
     * another live node has not registered is started under the newest version registered here and on every live
     * node when that version takes the same data class (the instance names the version started), else refused by
     * every {@code start} with a {@link SagaVersionNotDeployedException}, storing nothing ({@link Builder#versionGuard}).
     */
    <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, D data);

    /** Starts a saga with a business key (queryable) and a random id. */
    <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, String businessKey, D data);

    /**
     * Starts a saga with an explicit id (for instance derived from the request, to dedupe restarts). The id must
     * not be blank nor contain {@code '/'}, which separates it from the rest of its idempotency keys and command
     * ids ({@code <sagaId>/<step>/compensation}: saga {@code s/a}'s step {@code compensation} would share the key
     * of the compensation of step {@code a} in saga {@code s}); either is refused with a
     * {@link ConfigurationException}. Generated ids never contain one.
     */
    <D> CompletionStage<SagaResult<D>> start(SagaDefinition<D> definition, String sagaId, String businessKey, D data);

    /**
     * Resumes every running or compensating saga in the store whose definition is registered: re-runs a
     * step whose outcome was not recorded, re-sends a remote command still awaiting its reply, re-arms
     * timeouts and retries from their persisted deadlines, and continues compensation. Also the sagas another live
     * orchestrator over the same store drives right now, unless saga ownership is on ({@link Builder#ownership}: the
     * sagas of live nodes are then left alone); with several orchestrators and no ownership, use
     * {@link #recover(Duration)}.
     *
     * <p>The store returns only the sagas the recovery may resume ({@link SagaStore#findRecoveryCandidates}), a page
     * at a time: the sagas left alone (those of live nodes; with {@link #recover(Duration)} those updated within its
     * {@code idleFor}) are not read, nor their data, and a recovery holds at most one page of sagas at once.
     *
     * <p>A saga driven here that another orchestrator wrote since this one last did (it adopted the saga, say, and
     * got the reply this one waits for) is no longer driven here: its result stage completes exceptionally with a
     * {@link ConcurrentSagaUpdateException} (as at a write that lost), and the saga is then treated as one not
     * driven here. Every {@code recover} does so; {@link #recover(Duration)} and its sweeps for the sagas whose last
     * write here is at least {@code idleFor} old (the others are not read: a later recovery checks them once they
     * are, without a read per saga driven here and recovery).
     */
    RecoveryReport recover();

    /**
     * Resumes, as {@link #recover()} does, the running or compensating sagas not driven here whose last transition
     * ({@link SagaInstance#updatedAt()}) is at least {@code idleFor} old on this orchestrator's scheduler clock; the
     * more recently updated ones are left alone, as probably driven by another live orchestrator over the same store
     * (the store leaves them out of the recovery's query). {@code recover(Duration.ZERO)} is {@link #recover()}.
     *
     * <p>For several orchestrators (nodes) over one store: {@code idleFor} must exceed the longest time a saga goes
     * without a transition while a live node drives it, or that node's saga is adopted too (its step runs twice,
     * and that node's result stage completes exceptionally with a {@link ConcurrentSagaUpdateException} while the
     * saga goes on here): the longest run of a local action or compensation (an asynchronous one's bounded by its
     * step's timeout, if it has one; an asynchronous compensation's by its compensation timeout), the longest
     * retry backoff delay, plus the clock skew between the nodes. A remote step or compensation
     * awaiting its reply is idle too (see docs/sagas.md, "Recovery with several nodes"). A node that dies after
     * another's sweep is picked up only by a later call: call it periodically, or configure
     * {@link Builder#recoverEvery(Duration, Duration)}. With saga ownership ({@link Builder#ownership}) the sagas of
     * live nodes are left alone whatever their age, and {@code idleFor} applies on top of that.
     *
     * @param idleFor zero or positive, an age threshold rather than a delay: one longer than
     *                {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER.getDuration()}) is taken as
     *                that, and resumes nothing older than the clock goes back; null or negative is refused with a
     *                {@link ConfigurationException}
     */
    RecoveryReport recover(Duration idleFor);

    /**
     * The result of a saga driven by this orchestrator (started or recovered), when it finishes; its data is of the
     * data class of the definition version it ended under ({@link SagaResult#definitionVersion()}), or as stored when
     * that version is not registered here. {@link #result(String, Class)} gives it typed.
     */
    CompletionStage<SagaResult<Object>> result(String sagaId);

    /**
     * {@link #result(String)} with the data as {@code dataClass} (the data class of the definition the saga ends under):
     * the stage completes exceptionally with a {@link ConfigurationException} naming the saga, its data's class, the
     * definition version and {@code dataClass} when the data is of another class (a saga of another definition, or one
     * migrated to a version with another data class, or of a version not registered here, its data as stored). A null
     * {@code dataClass} is refused with a {@link ConfigurationException}.
     */
    default <D> CompletionStage<SagaResult<D>> result(String sagaId, Class<D> dataClass) {
        ConfigurationException.require(dataClass != null, "dataClass must not be null");
        return result(sagaId).thenApply(result -> typed(result, dataClass));
    }

    @SuppressWarnings("unchecked")
    private static <D> SagaResult<D> typed(SagaResult<Object> result, Class<D> dataClass) {
        Object data = result.data();
        if (data != null && !dataClass.isInstance(data)) {
            throw new ConfigurationException("saga " + StreamSagaException.quote(result.sagaId()) + ": its data is a "
                    + data.getClass().getName() + " (definition version " + result.definitionVersion() + "), not a "
                    + dataClass.getName());
        }
        return (SagaResult<D>) (SagaResult<?>) result;
    }

    /**
     * Cancels a running saga: what was done is compensated; the result is {@code COMPENSATED}. A saga past its
     * pivot (the pivot succeeded, or a retriable step started) cannot go back: its cancellation is refused; so is
     * that of a saga whose pivot is in flight (running, a remote pivot waiting for its reply, or one waiting for its
     * retry after an attempt that may have taken effect, one that timed out or a remote one's: if it succeeds the
     * saga cannot go back, if it fails the saga compensates anyway), and that of a saga whose every step succeeded,
     * which completes (a {@link SagaListener} cancelling from
     * {@code onStepCompleted} of the last step sees it still {@code RUNNING}).
     * An asynchronous action in flight is not abandoned: the saga is {@code COMPENSATING} from this call on, and its
     * compensations start once that action's outcome is known (its stage completes, or its step's timeout fires), so
     * that what it did is undone too; a step with no timeout whose stage never completes keeps the saga
     * {@code COMPENSATING} for ever. A remote step still waiting for its reply is not waited for: it is compensated
     * as uncertain.
     * When another orchestrator wrote the saga since it was read here (it drives it now), nothing is stored and
     * the call throws that {@link ConcurrentSagaUpdateException}; a store failure that kept the cancellation
     * from being stored is thrown as well, and so is the store's {@link ConfigurationException} when it refuses the
     * cancellation's write (a value it cannot keep), or its {@link io.streamsaga.saga.spi.SagaWriteRefusedException}
     * (a write that meets what the store holds): the saga then stays running as stored ({@link #markResolved}
     * likewise; {@link #retryCompensation} and {@link #skipCompensation} fail their stage so), and a run of it driven
     * here goes on as if the call had not been made.
     */
    void cancel(String sagaId);

    /**
     * Operator: retries the failed compensations (or stuck retriable step, or the step whose outcome the store refused)
     * of a saga that needs attention: one more attempt each, numbered after the earlier ones (a remote compensation's
     * command gets a new id, as does a remote step's whose reply's outcome the store refused). Once the retry is
     * stored, a saga compensating again emits a {@code compensating} lifecycle event (as a saga beginning to
     * compensate; {@link SagaListener#onCompensationStarting}), one sent forward a {@code retried} event (status
     * {@code RUNNING}, its error the failure it retries after, which the running saga no longer holds and its
     * {@code SAGA_RETRIED} transition's detail keeps; {@link SagaListener#onRetried}, which is handed that failure), so
     * that a consumer whose last event of it was {@code failed}
     * learns at once that it no longer needs attention.
     */
    CompletionStage<SagaResult<Object>> retryCompensation(String sagaId);

    /**
     * Operator: skips the failed compensation of {@code step} and continues compensating earlier steps. Once stored,
     * a {@code compensating} lifecycle event and {@link SagaListener#onCompensationStarting}, as for
     * {@link #retryCompensation}. When another compensation still failed the saga still needs attention, now for
     * that one: a {@code failed} lifecycle event again (status {@code FAILED_NEEDS_ATTENTION}, error that
     * compensation's failure) and {@link SagaListener#onFailed} once more, as the last ones named the skipped step.
     */
    CompletionStage<SagaResult<Object>> skipCompensation(String sagaId, String step);

    /**
     * Operator: marks a saga that needs attention as resolved by hand (terminal). Once the write is stored, a
     * {@code resolved} lifecycle event is emitted (status {@code RESOLVED}, its error the failure that was resolved:
     * published after the write, or written with it by a store that takes outgoing messages or
     * {@code JdbcSagaStore}'s {@code lifecycleEventsToOutbox}), so that a consumer whose last event of the saga was
     * {@code failed} learns it no longer needs attention; then {@link SagaListener#onResolved} is called, on this
     * thread. A call that throws (refused, or another orchestrator's write first) emits neither.
     *
     * <p>This and the other operator calls ({@link #cancel}, {@link #retryCompensation}, {@link #skipCompensation})
     * accept a saga whose definition version is no longer registered when a {@link Builder#dataUpcaster} chain
     * leads to a registered one: it is migrated as {@link #recover()} would, once the call is allowed (a refused
     * call changes nothing); without a chain the call is refused with a {@link SagaException}. When another
     * orchestrator writes the saga first (its own operator call, a recover()), the call fails with a
     * {@link ConcurrentSagaUpdateException} and writes nothing: read the saga again before deciding. So does
     * this call, without a migration, when its own write loses that way (thrown, as by {@link #cancel}).
     */
    void markResolved(String sagaId);

    Optional<SagaInstance> find(String sagaId);

    /**
     * The sagas of {@code businessKey}, oldest first. Unbounded: every one is read, with its data; for a key that may
     * have many, use {@link #findByBusinessKey(String, SagaPageRequest)}.
     */
    List<SagaInstance> findByBusinessKey(String businessKey);

    /**
     * A page of the sagas of {@code businessKey}, in {@link SagaPageRequest}'s order (oldest first, then by id). A null
     * or unstorable {@code businessKey}, or a null {@code page}, is refused with a {@link ConfigurationException}.
     */
    SagaPage findByBusinessKey(String businessKey, SagaPageRequest page);

    /**
     * The sagas in any of {@code statuses}, oldest first; none, or a null one, is refused with a
     * {@link ConfigurationException}. Unbounded: every one is read, with its data (of the terminal statuses, every
     * saga retention keeps); for a status that may hold many, use {@link #findByStatus(Set, SagaPageRequest)}.
     */
    List<SagaInstance> findByStatus(SagaStatus... statuses);

    /**
     * A page of the sagas in any of {@code statuses}, in {@link SagaPageRequest}'s order (oldest first, then by id): a
     * saga that leaves the statuses between two pages (it finishes) is on neither the next page nor a later one, and
     * moves no other saga off it. No status, a null one, or a null {@code page} is refused with a
     * {@link ConfigurationException}.
     */
    SagaPage findByStatus(Set<SagaStatus> statuses, SagaPageRequest page);

    /**
     * How many sagas are in each of {@code statuses}, as the store holds them: a map of every one of them, in the
     * enum's order, 0 for a status no saga is in (the sagas needing attention, running and compensating, for a
     * dashboard or a gauge: saga-micrometer's {@code SagaStatusGauges}). Counted by the store without reading any saga
     * ({@link SagaStore#countByStatus}; {@code JdbcSagaStore} in one statement over an index), on the calling
     * thread. No status, or a null one, is refused with a {@link ConfigurationException}.
     */
    Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses);

    /**
     * {@link #countByStatus}, per saga name: for each saga name of which at least one saga is in one of
     * {@code statuses}, a map of every one of them, in the enum's order, 0 for a status no saga of that name is in; a
     * name with no saga in any of them is left out; the names in their natural order (saga-micrometer's
     * {@code SagaStatusGauges} shows them as a gauge per saga and status). Counted by the store without reading any saga
     * ({@link SagaStore#countBySagaAndStatus}), on the calling thread, the names as stored, those of sagas this
     * orchestrator's definitions did not start too. No status, or a null one, is refused with a
     * {@link ConfigurationException}.
     */
    Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses);

    /**
     * A page of the running or compensating sagas idle for longer than {@code idleFor}: whose last transition
     * ({@link SagaInstance#updatedAt()}) was written before now minus {@code idleFor}, in {@link SagaPageRequest}'s
     * order (oldest first, then by id). Unlike {@link #findUnfinishedLongerThan}, which counts from a saga's start, a
     * long saga that progresses (a remote step awaiting its reply for hours by design writes nothing meanwhile, so it
     * is listed once it has waited that long, but not while its steps go on) is told from a stuck one by how long
     * nothing happened to it. A saga that needs attention is not among them: {@code findByStatus} lists those.
     * {@code idleFor} is a threshold, as {@link #recover(Duration)}'s: zero or positive, one longer than
     * {@link ConfigurationException#MAX_DURATION} taken as that; null or negative is refused with a
     * {@link ConfigurationException}, as is a null {@code page}.
     */
    SagaPage findIdleLongerThan(Duration idleFor, SagaPageRequest page);

    /**
     * Running or compensating sagas started longer than {@code age} ago: candidates for investigation. {@code age} is
     * a threshold, as {@link #recover(Duration)}'s {@code idleFor}: zero or positive, one longer than
     * {@link ConfigurationException#MAX_DURATION} taken as that; null or negative is refused with a
     * {@link ConfigurationException}.
     */
    List<SagaInstance> findUnfinishedLongerThan(Duration age);

    /** The recorded transitions of a saga. */
    List<SagaTransition> history(String sagaId);

    /** The recorded run of a saga as a Mermaid sequence diagram. */
    String sequenceDiagram(String sagaId);

    /**
     * Deletes the completed, compensated and resolved sagas that finished (their last transition) longer ago than the
     * configured retention, with their history; returns how many. Sagas that need attention are kept. One call of
     * the store, on the calling thread.
     */
    int purgeFinished();

    /**
     * Stops driving sagas (subscriptions closed, timers ignored); the store keeps their state, and
     * {@link #recover()} on a new orchestrator goes on from it. A synchronous action or compensation running at
     * that moment on another thread is not interrupted: close() waits until it returns, its outcome is stored
     * (and reported to listeners and the lifecycle topic as usual), and no further step or compensation is
     * started, nor written as started (its result completes exceptionally with a
     * {@link SagaException}). With saga ownership ({@link Builder#ownership}) it then stops the heartbeat and removes
     * it from the store, so that the other nodes adopt this node's unfinished sagas at their next recovery. Its
     * periodic work (purge, recovery sweep, heartbeat) is cancelled, and one running on another thread ends before
     * close() stops the runs (it waits up to 10 s; called from that work, it does not wait for it).
     */
    @Override
    void close();

    static Builder builder() {
        return new Builder();
    }

    /**
     * The outcome of {@link #recover()} or {@link #recover(Duration)}.
     *
     * @param resumed         ids of the sagas this orchestrator now drives that it did not start and no recovery
     *                        reported before: those this recovery adopted, and those a reply's arrival made it drive
     *                        since the previous recovery (a reply to a command of a saga not driven here, read after a
     *                        restart before {@code recover()} was called, say), each reported once, by the first
     *                        recovery that reads it unfinished; {@link #result(String)} gives their outcome. Not
     *                        those an operator call ({@link #cancel}, {@link #retryCompensation},
     *                        {@link #skipCompensation}) made it drive: that call's caller knows, and follows the saga by
     *                        the call's stage or {@code result(String)}
     * @param unresolvable    ids of unfinished sagas whose definition (name and version) is not registered and
     *                        cannot be migrated, and those whose stored state the store cannot read
     *                        ({@link io.streamsaga.saga.spi.UnreadableSagaData}) or whose step states are not one per
     *                        step of its registered definition; they stay untouched in the store, and
     *                        the recovery goes on with the others. Also those a store failure kept
     *                        this recovery from checking or adopting (a run driven here then stays driven here); the
     *                        next recovery tries again
     * @param recentlyUpdated ids of running or compensating sagas not driven here that {@link #recover(Duration)}
     *                        read and left alone because their last transition is more recent than its
     *                        {@code idleFor} (probably driven by another orchestrator); a later call resumes those
     *                        that stay idle. Only those it read: the store leaves the recently updated sagas out of
     *                        the recovery's query, so these are the ones found so after the query (a run driven
     *                        here whose saga another node wrote since, say). Always empty for {@link #recover()}
     * @param ownedElsewhere  ids of running or compensating sagas left alone because, with saga ownership
     *                        ({@link Builder#ownership}), another node owns them and its heartbeat is within the
     *                        lease timeout, or another node adopted them first during this recovery. Only those it
     *                        read: the store leaves the sagas of the nodes alive at the query out of it, so these
     *                        are the ones found so after it (an owner alive again, an adoption lost). Always empty
     *                        without ownership
     * @param unresolvableReasons why each saga of {@code unresolvable} was left, by its id, in the order of
     *                        {@code unresolvable} (what the recovery's ERROR or WARN line says of it): no upcaster on
     *                        the way from its version, an upcaster that threw (its exception's class and message) or
     *                        returned no data, upcast data the registered version's data class cannot read, a started
     *                        step the new version no longer has, a saga past its pivot given a compensatable step,
     *                        stored step states not those of its definition, a stored state the store cannot read, a
     *                        store failure, another orchestrator having migrated (or finished) it first (logged at
     *                        INFO: two nodes recovering at once is normal operation). A
     *                        recovery gives one for each id; a report made with the constructors that take none has
     *                        none. A reason for an id not in {@code unresolvable} is refused
     *                        ({@link ConfigurationException})
     */
    record RecoveryReport(List<String> resumed, List<String> unresolvable, List<String> recentlyUpdated,
                          List<String> ownedElsewhere, Map<String, String> unresolvableReasons) {
        public RecoveryReport {
            resumed = List.copyOf(resumed);
            unresolvable = List.copyOf(unresolvable);
            recentlyUpdated = List.copyOf(recentlyUpdated);
            ownedElsewhere = List.copyOf(ownedElsewhere);
            // A set, not the list: a recovery may leave many thousand sagas unresolvable, each with a reason.
            Set<String> ids = new HashSet<>(unresolvable);
            for (Map.Entry<String, String> reason : unresolvableReasons.entrySet()) {
                ConfigurationException.require(reason.getKey() != null && ids.contains(reason.getKey()),
                        "a reason is given for saga %s, which is not reported unresolvable", reason.getKey());
                ConfigurationException.require(reason.getValue() != null, "the reason for saga %s is null",
                        reason.getKey());
            }
            Map<String, String> reasons = new java.util.LinkedHashMap<>(); // in the order of unresolvable
            for (String sagaId : unresolvable) {
                String reason = unresolvableReasons.get(sagaId);
                if (reason != null) {
                    reasons.put(sagaId, reason);
                }
            }
            unresolvableReasons = java.util.Collections.unmodifiableMap(reasons);
        }

        /** A report without the reasons of the unresolvable sagas. */
        public RecoveryReport(List<String> resumed, List<String> unresolvable, List<String> recentlyUpdated,
                              List<String> ownedElsewhere) {
            this(resumed, unresolvable, recentlyUpdated, ownedElsewhere, Map.of());
        }

        /** A report of a recovery without saga ownership (nothing owned elsewhere). */
        public RecoveryReport(List<String> resumed, List<String> unresolvable, List<String> recentlyUpdated) {
            this(resumed, unresolvable, recentlyUpdated, List.of());
        }

        /** A report of a recovery that left no saga alone (as {@link #recover()} never does without ownership). */
        public RecoveryReport(List<String> resumed, List<String> unresolvable) {
            this(resumed, unresolvable, List.of(), List.of());
        }
    }

    /**
     * Saga ownership of an orchestrator ({@link Builder#ownership}): its node id, how often it writes its heartbeat,
     * and how old another node's last heartbeat must be for its sagas to be adopted. Immutable.
     *
     * @param nodeId            this node's id, unique among the live orchestrators over one store and stable across
     *                          its restarts (a host name, a pod name): 1 to 200 characters, without U+0000 or a
     *                          lone surrogate
     * @param heartbeatInterval how often the heartbeat is written; positive
     * @param leaseTimeout      longer than {@code heartbeatInterval}: it must exceed the interval plus the clock skew
     *                          between the nodes plus the longest pause of a node (a GC pause, a frozen VM)
     */
    record Ownership(String nodeId, Duration heartbeatInterval, Duration leaseTimeout) {
        /**
         * The counter ({@link io.streamsaga.metrics.MetricsRecorder#increment}, tag {@code node}) of this node's
         * heartbeats written at least the lease timeout after its previous one (a long pause, a store outage, on its
         * own clock): meanwhile the other nodes may have adopted its sagas. Logged at WARN too. What the recorder
         * throws there is logged and ignored, also when a recovery writes the heartbeat: the recovery goes on.
         */
        public static final String LATE_HEARTBEAT_METRIC = "streamsaga_saga_late_heartbeats_total";

        public Ownership {
            if (nodeId == null || nodeId.isBlank() || nodeId.length() > StoredKeys.MAX_NODE_ID_LENGTH) {
                throw new ConfigurationException("the node id must be 1 to " + StoredKeys.MAX_NODE_ID_LENGTH
                        + " characters and not blank, but was "
                        + StreamSagaException.quote(nodeId));
            }
            // written with every saga and heartbeat: refused here, not by a store later (StoredKeys)
            int unstorable = StoredKeys.firstUnstorable(nodeId);
            if (unstorable >= 0 && nodeId.charAt(unstorable) == '\0') {
                throw new ConfigurationException("the node id must not contain the character U+0000 (NUL), which a"
                        + " durable store cannot hold, but was " + StreamSagaException.quote(nodeId));
            }
            // UTF-8 cannot encode a lone surrogate: PostgreSQL's driver writes '?' for it, so node ids differing only
            // there would be one node in a JDBC store
            if (unstorable >= 0) {
                throw new ConfigurationException("the node id must not contain a lone surrogate (a UTF-16 surrogate that"
                        + " is not half of a pair), which a durable store cannot hold as it is, but was "
                        + StreamSagaException.quote(nodeId));
            }
            ConfigurationException.requirePositive(heartbeatInterval, "the heartbeat interval");
            ConfigurationException.requirePositive(leaseTimeout, "the lease timeout");
            ConfigurationException.require(leaseTimeout.compareTo(heartbeatInterval) > 0,
                    "the lease timeout must be longer than the heartbeat interval (%s), but was %s", heartbeatInterval,
                    leaseTimeout);
        }
    }

    /**
     * What {@code start} does, with saga ownership, with a saga whose definition version another live node over the
     * same store (its heartbeat within the lease) has not registered: during a rolling deploy that node may take the
     * saga's replies and would dead-letter them. Each node advertises the versions it has registered with its
     * heartbeat, and a node reads the others' with its own heartbeat, so that {@code start} reads no store. Only
     * definitions with a remote step or compensation (a reply) are guarded. See docs/sagas.md, "Rolling deploys".
     */
    enum VersionGuard {
        /** {@code start} throws a {@link SagaVersionNotDeployedException}, storing nothing. */
        REFUSE,
        /**
         * The default: {@code start} starts the newest version registered here and on every live node instead, when
         * its data class is the one given's (the instance, {@link SagaOrchestrator#find}, names the version started;
         * each change is logged at INFO, not each start); else it refuses as {@link #REFUSE} does.
         */
        FALL_BACK,
        /** {@code start} starts the version given, as without ownership; nothing is read for it. */
        ALLOW
    }

    /**
     * Immutable orchestrator configuration.
     *
     * @param store           the saga store
     * @param bus             the bus for remote steps and lifecycle events, or null
     * @param scheduler       time, timeouts and backoff
     * @param metrics         saga counters; kept {@link MetricsRecorder#guarded guarded}
     * @param listeners       lifecycle hooks
     * @param interceptors    invocation interceptors
     * @param definitions     registered definitions (started ones register themselves too)
     * @param upcasters       saga data upcasters by saga name and source version
     * @param mapper          JSON mapper for saga data read back as trees and for upcasting
     * @param replyTopic      the topic remote replies are sent to
     * @param group           the consumer group reading replies
     * @param lifecycleTopic  where lifecycle events are published, or null for none
     * @param retention       how long finished sagas are kept, an age threshold (one longer than
     *                        {@link ConfigurationException#MAX_DURATION} is taken as that)
     * @param purgeInterval   how often finished sagas older than the retention are deleted automatically, or
     *                        null to purge only on {@link SagaOrchestrator#purgeFinished()}
     * @param parallelExecutor where the synchronous actions of a parallel group's members run, so that they
     *                        run concurrently; null: on daemon threads the orchestrator starts when first
     *                        needed and stops when it is closed
     * @param recoveryInterval how often {@link SagaOrchestrator#recover(Duration)} runs automatically, or null
     *                        for never (see {@link Builder#recoverEvery(Duration, Duration)})
     * @param recoveryIdleFor the {@code idleFor} of those automatic recoveries (null exactly when
     *                        {@code recoveryInterval} is)
     * @param ownership       saga ownership ({@link Builder#ownership}), or null for none; needs a store that is a
     *                        {@link NodeRegistry}
     * @param retryJitter     the random source of the retry policies' jitter ({@link Builder#retryJitter}), or null
     *                        for {@link java.util.concurrent.ThreadLocalRandom}'s of the thread that schedules a retry
     * @param logContext      whether the saga's id, name and step are in slf4j's MDC while the engine calls the
     *                        application ({@link Builder#logContext})
     * @param versionGuard    what {@code start} does with a definition version another live node lacks
     *                        ({@link Builder#versionGuard}); with ownership, null is taken as
     *                        {@link VersionGuard#FALL_BACK}; without, it must be null
     */
    record Config(SagaStore store, EventBus bus, Scheduler scheduler, MetricsRecorder metrics,
                  List<SagaListener> listeners, List<SagaInterceptor> interceptors, List<SagaDefinition<?>> definitions,
                  Map<String, Map<Integer, SagaDataUpcaster>> upcasters, ObjectMapper mapper, String replyTopic,
                  String group, String lifecycleTopic, Duration retention, Duration purgeInterval,
                  Executor parallelExecutor, Duration recoveryInterval, Duration recoveryIdleFor, Ownership ownership,
                  RandomGenerator retryJitter, boolean logContext, VersionGuard versionGuard) {

        /** A configuration without saga ownership. */
        public Config(SagaStore store, EventBus bus, Scheduler scheduler, MetricsRecorder metrics,
                      List<SagaListener> listeners, List<SagaInterceptor> interceptors,
                      List<SagaDefinition<?>> definitions, Map<String, Map<Integer, SagaDataUpcaster>> upcasters,
                      ObjectMapper mapper, String replyTopic, String group, String lifecycleTopic, Duration retention,
                      Duration purgeInterval, Executor parallelExecutor, Duration recoveryInterval,
                      Duration recoveryIdleFor) {
            this(store, bus, scheduler, metrics, listeners, interceptors, definitions, upcasters, mapper, replyTopic,
                    group, lifecycleTopic, retention, purgeInterval, parallelExecutor, recoveryInterval, recoveryIdleFor,
                    null, null, false, null);
        }

        /** A configuration with the default jitter ({@link java.util.concurrent.ThreadLocalRandom}) and without log context. */
        public Config(SagaStore store, EventBus bus, Scheduler scheduler, MetricsRecorder metrics,
                      List<SagaListener> listeners, List<SagaInterceptor> interceptors,
                      List<SagaDefinition<?>> definitions, Map<String, Map<Integer, SagaDataUpcaster>> upcasters,
                      ObjectMapper mapper, String replyTopic, String group, String lifecycleTopic, Duration retention,
                      Duration purgeInterval, Executor parallelExecutor, Duration recoveryInterval,
                      Duration recoveryIdleFor, Ownership ownership) {
            this(store, bus, scheduler, metrics, listeners, interceptors, definitions, upcasters, mapper, replyTopic,
                    group, lifecycleTopic, retention, purgeInterval, parallelExecutor, recoveryInterval, recoveryIdleFor,
                    ownership, null, false, null);
        }

        /** A configuration without log context (see {@link Builder#logContext}). */
        public Config(SagaStore store, EventBus bus, Scheduler scheduler, MetricsRecorder metrics,
                      List<SagaListener> listeners, List<SagaInterceptor> interceptors,
                      List<SagaDefinition<?>> definitions, Map<String, Map<Integer, SagaDataUpcaster>> upcasters,
                      ObjectMapper mapper, String replyTopic, String group, String lifecycleTopic, Duration retention,
                      Duration purgeInterval, Executor parallelExecutor, Duration recoveryInterval,
                      Duration recoveryIdleFor, Ownership ownership, RandomGenerator retryJitter) {
            this(store, bus, scheduler, metrics, listeners, interceptors, definitions, upcasters, mapper, replyTopic,
                    group, lifecycleTopic, retention, purgeInterval, parallelExecutor, recoveryInterval, recoveryIdleFor,
                    ownership, retryJitter, false, null);
        }

        /** A configuration with the default version guard ({@link VersionGuard#FALL_BACK} with ownership). */
        public Config(SagaStore store, EventBus bus, Scheduler scheduler, MetricsRecorder metrics,
                      List<SagaListener> listeners, List<SagaInterceptor> interceptors,
                      List<SagaDefinition<?>> definitions, Map<String, Map<Integer, SagaDataUpcaster>> upcasters,
                      ObjectMapper mapper, String replyTopic, String group, String lifecycleTopic, Duration retention,
                      Duration purgeInterval, Executor parallelExecutor, Duration recoveryInterval,
                      Duration recoveryIdleFor, Ownership ownership, RandomGenerator retryJitter, boolean logContext) {
            this(store, bus, scheduler, metrics, listeners, interceptors, definitions, upcasters, mapper, replyTopic,
                    group, lifecycleTopic, retention, purgeInterval, parallelExecutor, recoveryInterval, recoveryIdleFor,
                    ownership, retryJitter, logContext, null);
        }

        public Config {
            Objects.requireNonNull(store, "store");
            Objects.requireNonNull(scheduler, "scheduler");
            metrics = MetricsRecorder.guarded(Objects.requireNonNull(metrics, "metrics")); // what it throws: logged, ignored
            Objects.requireNonNull(mapper, "mapper");
            listeners = List.copyOf(listeners);
            interceptors = List.copyOf(interceptors);
            definitions = List.copyOf(definitions);
            upcasters = Map.copyOf(upcasters);
            retention = ConfigurationException.requireAge(retention, "retention"); // an age threshold, as recover's idleFor
            if (purgeInterval != null) { // null: purged only on purgeFinished()
                ConfigurationException.requirePositive(purgeInterval, "purgeInterval");
            }
            if (recoveryInterval != null) { // null: no automatic recovery
                ConfigurationException.requirePositive(recoveryInterval, "the recovery period");
            }
            ConfigurationException.require((recoveryInterval == null) == (recoveryIdleFor == null),
                    "a recovery period (%s) needs an idleFor (%s) and an idleFor a period", recoveryInterval, recoveryIdleFor);
            if (recoveryIdleFor != null) {
                recoveryIdleFor = ConfigurationException.requireAge(recoveryIdleFor, "the recovery idleFor");
            }
            ConfigurationException.require(ownership == null || store instanceof NodeRegistry,
                    "saga ownership needs a store that is a NodeRegistry (InMemorySagaStore, JdbcSagaStore), but %s is not",
                    store.getClass().getName());
            ConfigurationException.require(versionGuard == null || ownership != null,
                    "versionGuard(%s) needs ownership(...): the nodes advertise their definition versions with their"
                            + " heartbeats", versionGuard);
            if (ownership != null && versionGuard == null) {
                versionGuard = VersionGuard.FALL_BACK;
            }
        }
    }

    /** Builds a {@link SagaOrchestrator}; not thread-safe. */
    final class Builder {
        private SagaStore store;
        private EventBus bus;
        private Scheduler scheduler;
        private MetricsRecorder metrics;
        private final List<SagaListener> listeners = new ArrayList<>();
        private final List<SagaInterceptor> interceptors = new ArrayList<>();
        private final List<SagaDefinition<?>> definitions = new ArrayList<>();
        private final Map<String, Map<Integer, SagaDataUpcaster>> upcasters = new HashMap<>();
        private ObjectMapper mapper;
        private String replyTopic = "saga-replies";
        private String group = "saga-orchestrator";
        private String lifecycleTopic;
        private Duration retention = Duration.ofDays(7);
        private Duration purgeInterval;
        private Executor parallelExecutor;
        private Duration recoveryInterval;
        private Duration recoveryIdleFor;
        private Ownership ownership;
        private VersionGuard versionGuard;
        private RandomGenerator retryJitter;
        private boolean logContext;

        private Builder() {
        }

        public Builder store(SagaStore store) {
            this.store = Objects.requireNonNull(store, "store");
            return this;
        }

        /** The bus: needed for remote steps and lifecycle events; its scheduler and metrics are the defaults. */
        public Builder bus(EventBus bus) {
            this.bus = Objects.requireNonNull(bus, "bus");
            return this;
        }

        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        /**
         * The recorder of saga starts and finishes (and of late heartbeats with ownership); the bus's by default. What
         * it throws is logged and ignored: it changes no saga's course and fails no call.
         */
        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        public Builder listener(SagaListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        public Builder interceptor(SagaInterceptor interceptor) {
            interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
            return this;
        }

        /**
         * The random source of the jitter of every retry policy's backoff ({@link RetryPolicy#delayBefore}), for the
         * sagas' steps and compensations; {@link java.util.concurrent.ThreadLocalRandom} by default. A seeded one
         * ({@code new java.util.Random(seed)}) makes the delays, and so the order of timers a jitter decides,
         * repeat from run to run, as the test kit does for reproducible runs. It is drawn from only when a retry is
         * scheduled, on whichever thread drives the saga then, holding its lock (synchronized on it): sagas driven on
         * several threads, and other orchestrators and buses given the same source, never draw from it at once, so it
         * need not be thread-safe itself ({@code SplittableRandom} will do) as long as nothing else draws from it; the
         * delays then repeat only as far as the order of the retries does.
         */
        public Builder retryJitter(RandomGenerator random) {
            this.retryJitter = Objects.requireNonNull(random, "random");
            return this;
        }

        /** Registers a definition so that {@link SagaOrchestrator#recover()} can resume its instances. */
        public Builder register(SagaDefinition<?> definition) {
            definitions.add(Objects.requireNonNull(definition, "definition"));
            return this;
        }

        /** Migrates data of saga {@code sagaName} from definition version {@code fromVersion} to the next. */
        public Builder dataUpcaster(String sagaName, int fromVersion, SagaDataUpcaster upcaster) {
            ConfigurationException.require(sagaName != null && !sagaName.isBlank(),
                    "an upcaster's saga name must not be blank, but was '%s'", sagaName);
            ConfigurationException.require(fromVersion >= 1, "fromVersion must be 1 or more, but was %s", fromVersion);
            upcasters.computeIfAbsent(sagaName, n -> new HashMap<>()).put(fromVersion, Objects.requireNonNull(upcaster, "upcaster"));
            return this;
        }

        /**
         * Where the synchronous actions and the compensations of a parallel group's members run (by default on
         * daemon threads the orchestrator owns), so that a group's members run, and are compensated,
         * concurrently. {@code Runnable::run} runs them one after another on the driving thread, as the test
         * kit does for reproducible runs. Actions declared with {@code asyncAction} or as remote steps run
         * concurrently either way.
         */
        public Builder parallelExecutor(Executor executor) {
            this.parallelExecutor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /** The JSON mapper for saga data and command payloads; unset: the bus codec's mapper when it is JSON, else a default one. */
        public Builder mapper(ObjectMapper mapper) {
            this.mapper = Objects.requireNonNull(mapper, "mapper");
            return this;
        }

        /**
         * The topic participants reply to ({@code saga-replies} by default): a legal topic name (letters, digits,
         * '.', '_', '-'; {@link TopicPattern#requireTopicName}) of at most {@link TopicPattern#MAX_TOPIC_LENGTH}
         * characters, as the orchestrator subscribes to it (a dead-letter topic's name of 246-249 characters, legal
         * to publish to, the bus does not subscribe to), refused here rather than at every command or at subscribe.
         */
        public Builder replyTopic(String replyTopic) {
            TopicPattern.requireTopicName(replyTopic);
            if (replyTopic.length() > TopicPattern.MAX_TOPIC_LENGTH) {
                throw new ConfigurationException("reply topic must be at most " + TopicPattern.MAX_TOPIC_LENGTH
                        + " characters, as the orchestrator subscribes to it and the bus subscribes to no topic whose"
                        + " dead-letter topic (the name and " + MessageHeaders.DEAD_LETTER_SUFFIX + ") would be over the"
                        + " 249 Kafka takes, but was " + StreamSagaException.quote(replyTopic));
            }
            this.replyTopic = replyTopic;
            return this;
        }

        /**
         * The consumer group of the reply subscription ({@code saga-orchestrator} by default). Each application that
         * runs sagas on a shared broker needs a reply topic and group of its own ({@link #replyTopic}): at the same
         * defaults, two applications' orchestrators split the replies, each dead-lettering the other's as replies for
         * an unknown saga.
         */
        public Builder group(String group) {
            ConfigurationException.require(group != null && !group.isBlank(), "group must not be blank, but was '%s'", group);
            this.group = group;
            return this;
        }

        /**
         * Publishes {@link SagaLifecycleEvent}s to {@code topic} (needs a bus): a legal topic name (letters, digits,
         * '.', '_', '-'; {@link TopicPattern#requireTopicName}), refused here rather than at every event.
         */
        public Builder publishLifecycleEvents(String topic) {
            this.lifecycleTopic = TopicPattern.requireTopicName(topic);
            return this;
        }

        /**
         * How long finished sagas are kept before {@link SagaOrchestrator#purgeFinished()} deletes them (default 7
         * days): an age threshold, as {@link SagaOrchestrator#recover(Duration)}'s {@code idleFor}, so any zero or
         * positive duration, one longer than {@link ConfigurationException#MAX_DURATION} (such as
         * {@code ChronoUnit.FOREVER.getDuration()}, keeping every finished saga) taken as that
         * ({@link ConfigurationException#requireAge}); a negative one is refused by {@link #build()}.
         */
        public Builder retention(Duration retention) {
            this.retention = retention;
            return this;
        }

        /**
         * Deletes finished sagas older than the retention every {@code interval}, on the scheduler, in batches
         * ({@link io.streamsaga.saga.spi.SagaStore#deleteFinishedBefore(java.time.Instant, int)}), each a task of its
         * own, so that the scheduler's other timers (steps' timeouts and retries) run between them.
         */
        public Builder purgeEvery(Duration interval) {
            this.purgeInterval = interval;
            return this;
        }

        /**
         * Runs {@link SagaOrchestrator#recover(Duration) recover(idleFor)} every {@code period} on the scheduler
         * (first one {@code period} after {@code build()}; the start-up {@code recover} stays the application's
         * call), so that the sagas of an orchestrator that died after this one started are resumed once idle for
         * {@code idleFor}. Resumed sagas' synchronous steps then run on the scheduler's thread, as retries after a
         * backoff do (on a one-thread scheduler such as {@link Scheduler#system()}, a slow step delays its every other
         * task: the next sweep, the purge, other sagas' timeouts). Each sweep queries the store for the sagas it may
         * resume (those idle for {@code idleFor}, not those of live nodes with ownership), a page at a time (a period
         * of minutes, not milliseconds);
         * one that resumes nothing logs at DEBUG only, a failed one is logged and the next one runs as planned.
         * Stopped by {@link SagaOrchestrator#close()}.
         *
         * @param period  positive
         * @param idleFor zero or positive, as for {@code recover(idleFor)} (one longer than
         *                {@link ConfigurationException#MAX_DURATION} is taken as that); with several orchestrators over
         *                one store it must exceed the longest time a live one goes without a transition of a saga it
         *                drives
         */
        public Builder recoverEvery(Duration period, Duration idleFor) {
            ConfigurationException.requirePositive(period, "the recovery period");
            this.recoveryIdleFor = ConfigurationException.requireAge(idleFor, "idleFor");
            this.recoveryInterval = period;
            return this;
        }

        /**
         * Turns saga ownership on (off by default), for several orchestrators (nodes) over one store: every write of
         * this orchestrator stamps {@code nodeId} on the saga ({@link SagaInstance#owner()}), and it writes its
         * heartbeat to the store (a {@link NodeRegistry}) at {@code build()} and then every
         * {@code heartbeatInterval} on the scheduler, one write per node whatever the number of sagas. Its
         * recoveries ({@code recover}, {@code recover(idleFor)}, {@link #recoverEvery} sweeps) then adopt a saga only
         * when it has no owner, is this node's (a restart under the same id), or its owner's last heartbeat is at
         * least {@code leaseTimeout} old on this orchestrator's scheduler clock, or gone (its orchestrator closed):
         * the sagas of a live node are left alone however long they wait (the store leaves them out of the query),
         * those of a dead one are adopted at the first recovery after its lease ran out, whatever their age. An
         * adoption is a write of the saga under this node's id (a {@code SAGA_ADOPTED} transition): of two nodes
         * adopting one saga at once, one wins and the other leaves it. {@code idleFor}, when given, still applies
         * on top. The heartbeat advertises the definition versions registered here, and {@code start} refuses a
         * version another live node lacks, or starts the newest version every live node has ({@link #versionGuard}:
         * {@link VersionGuard#FALL_BACK} by default).
         * {@link SagaOrchestrator#close()} stops the heartbeat and removes it, so that the other nodes adopt
         * this node's unfinished sagas at their next recovery. See docs/sagas.md, "Recovery with several nodes",
         * for what this guarantees and what not (clock skew, pauses).
         *
         * @param nodeId            unique among the live nodes over the store, stable across restarts; 1 to 200
         *                          characters, without U+0000 (NUL: it is written with every saga and heartbeat, and
         *                          PostgreSQL's text cannot hold it) or a lone surrogate (which PostgreSQL's driver
         *                          writes as {@code '?'})
         * @param heartbeatInterval positive
         * @param leaseTimeout      longer than {@code heartbeatInterval}; it must exceed the interval plus the clock
         *                          skew between the nodes plus the longest pause of a node
         * @throws ConfigurationException for a bad value; at {@code build()} when the store is no {@link NodeRegistry}
         */
        public Builder ownership(String nodeId, Duration heartbeatInterval, Duration leaseTimeout) {
            this.ownership = new Ownership(nodeId, heartbeatInterval, leaseTimeout);
            return this;
        }

        /**
         * What {@code start} does with a saga of a definition version (with a remote step or compensation) that
         * another live node over the same store has not registered ({@link VersionGuard}; {@link VersionGuard#FALL_BACK}
         * by default). Needs {@link #ownership}: the nodes advertise their versions with their heartbeats; each node
         * reads the others' with its own heartbeat, so that {@code start} reads nothing from the store, and a node
         * that joins is seen at the others' next heartbeat.
         *
         * @throws ConfigurationException for null; at {@code build()} without {@link #ownership}
         */
        public Builder versionGuard(VersionGuard guard) {
            ConfigurationException.require(guard != null, "the version guard must not be null");
            this.versionGuard = guard;
            return this;
        }

        /**
         * Puts the saga's id ({@code streamsaga.sagaId}), its definition's name ({@code streamsaga.saga}) and the step
         * ({@code streamsaga.step}) in slf4j's {@link org.slf4j.MDC} while the engine drives a saga and calls the
         * application (actions, compensations, command factories, reply handlers, listeners, interceptors), so that
         * their log lines and the engine's own carry them; the engine's lines about one saga outside a drive (its
         * recovery, a reply ignored, its start refused) carry its id and name too. The thread's own values are put back
         * afterwards. Off by default: each put costs a thread-local map update in a real MDC adapter, on every saga.
         * Work an action hands to another executor gets none of them (the MDC is per thread). See docs/sagas.md, "Log
         * correlation".
         */
        public Builder logContext(boolean logContext) {
            this.logContext = logContext;
            return this;
        }

        /**
         * Builds the orchestrator: checks the configuration (a store; a bus for lifecycle events and for definitions
         * with remote steps; no definition registered twice; no remote step or remote compensation whose reply class,
         * its {@code onReply} or {@code onCompensationReply} class, the bus's codec cannot decode to, as
         * {@link io.streamsaga.codec.EventCodec#canDecodeTo} says: a class left out of the bus's {@code TypeRegistry},
         * whose every reply would fail the step, is refused naming the saga, the step and the call that registers it; so is
         * a command class declared with {@code command(topic, type, factory)} or {@code compensationCommand(topic, type,
         * factory)} that the bus's {@code TypeRegistry} does not register),
         * writes the first heartbeat with saga ownership,
         * subscribes to the reply topic when a registered definition uses the bus, and arms the retention purge and
         * the recovery sweeps that are set. It recovers nothing itself: call
         * {@link SagaOrchestrator#recover()} once the application's participants are subscribed.
         *
         * @throws ConfigurationException when the configuration is incomplete or contradictory
         */
        public SagaOrchestrator build() {
            ConfigurationException.require(store != null, "a SagaOrchestrator needs a store");
            ConfigurationException.require(lifecycleTopic == null || bus != null,
                    "publishLifecycleEvents('%s') needs a bus", lifecycleTopic);
            Set<String> seen = new java.util.HashSet<>();
            for (SagaDefinition<?> d : definitions) {
                ConfigurationException.require(seen.add(d.name() + "@" + d.version()),
                        "saga '%s' version %s is registered twice", d.name(), d.version());
                ConfigurationException.require(bus != null || d.steps().stream().noneMatch(SagaStep::usesBus),
                        "saga '%s' has remote steps or compensations, so the orchestrator needs a bus", d.name());
            }
            // Created for the orchestrator when it has neither a scheduler nor a bus's: closed with it.
            SystemScheduler ownScheduler = scheduler == null && bus == null
                    ? new SystemScheduler(Clock.systemUTC()) : null;
            Scheduler effectiveScheduler = scheduler != null ? scheduler : bus != null ? bus.scheduler() : ownScheduler;
            MetricsRecorder effectiveMetrics = metrics != null ? metrics : bus != null ? bus.metrics() : MetricsRecorder.NOOP;
            ObjectMapper effectiveMapper = mapper != null ? mapper
                    : bus != null && bus.codec() instanceof JsonEventCodec json ? json.mapper() : JsonEventCodec.defaultMapper();
            return new DefaultSagaOrchestrator(new Config(store, bus, effectiveScheduler, effectiveMetrics, listeners,
                    interceptors, definitions, upcasters, effectiveMapper, replyTopic, group, lifecycleTopic, retention,
                    purgeInterval, parallelExecutor, recoveryInterval, recoveryIdleFor, ownership, retryJitter,
                    logContext, versionGuard), ownScheduler);
        }
    }
}
