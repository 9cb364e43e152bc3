package io.streamsaga.saga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;

import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where saga instances and their transitions live. Every transition is written here before the engine
 * acts on it, so a new orchestrator over the same store resumes every unfinished saga.
 *
 * <p>Optimistic concurrency: each instance has a version; {@link #update} succeeds only when the stored
 * version is the expected one, so two orchestrators never drive the same saga at once. Implementations
 * must be thread-safe and pass {@code SagaStoreContractTest} from saga-core's test-jar. A recovery reads the
 * unfinished instances it may resume through {@link #findRecoveryCandidates}, page by page. Durable stores
 * serialise the saga data to JSON under {@link SagaInstance#dataType()} and may return it as a
 * {@code JsonNode}; the engine binds it to the definition's data class.
 *
 * <p>Timestamps: a store gives a saga's {@link SagaInstance#createdAt()} back as it was written, to the microsecond
 * (the engine writes it truncated to the microsecond; a store may drop what is finer). The engine derives the ids of a
 * saga's commands and lifecycle events from it ({@code <saga id>/<created at>/...}), which must come out the same after
 * the saga is read back, and tells a reply to a command of the saga from one to an earlier saga under the same id (purged
 * by retention) by it: a store that keeps it to the millisecond only (a {@code DATETIME(3)} column, a BSON date) makes
 * every reply to a command sent before the saga was read back look like another saga's, which the engine ignores (with a
 * WARN naming the store), so the step waits for its timeout (on the system clock the engine takes the start to the
 * millisecond anyway; on another clock, a virtual one say, it has microseconds). {@code SagaStoreContractTest} checks it.
 *
 * <p>Transactional messages (optional capability): a store whose {@link #storesOutgoingMessages()} is true
 * takes the messages a transition sends (remote-step commands, lifecycle events) with the transition
 * itself ({@link #insert(SagaInstance, SagaTransition, List)}, {@link #update(SagaInstance, SagaTransition, List)})
 * and writes them atomically with it, typically to a transactional outbox a relay publishes from; the
 * engine then never publishes them itself. They come encoded: a command the codec cannot encode is never handed
 * over (the transition is written without it, and its attempt fails with the codec's
 * {@link io.streamsaga.codec.EncodingException}). Stores without the capability keep the defaults: the engine
 * publishes after the write, and a crash in between is repaired by recovery re-sending the command.
 *
 * <p>A write whose saga id, saga, step or node name, business key, data type, failure class or owner holds U+0000
 * or a lone surrogate, or is longer than its limit (the {@code MAX_*_LENGTH} constants of
 * {@link io.streamsaga.spi.StoredKeys}, the JDBC columns' widths), is refused with a {@link ConfigurationException}
 * before anything is written, as a durable store must ({@link io.streamsaga.spi.StoredKeys}); a read by such a value
 * finds nothing.
 *
 * <p>Refused writes: a write the store refuses for what it holds, and would refuse again however often it is repeated,
 * is thrown as a {@link ConfigurationException} when a value of the write is one the store cannot keep (the widths
 * above, data that cannot be written as JSON), or as a {@link SagaWriteRefusedException} when the write meets something
 * the store holds that the engine cannot change (a transactional outbox that holds a row with the id of one of its
 * messages already), nothing of the write stored. The engine does not retry either: a refused start fails the caller
 * with the refusal, and a saga whose later write is refused is stored as it was before that write, needing attention,
 * with the refusal as its failure, for an operator (recover() leaves it alone). Any other exception of a write is a store
 * failure, which the engine retries (the orchestrator that met it resumes the saga after a backoff, and recover() does
 * too): throw neither for a failure that is not this write's (a permission, a full disk, a lost connection: every write
 * fails alike, and once it is fixed each saga it stopped is resumed), even one the store knows will not pass by itself.
 */
public interface SagaStore {

    /**
     * Stores a new instance (version 1) and its first transition.
     *
     * @throws ConcurrentSagaUpdateException when an instance with that id exists
     */
    void insert(SagaInstance instance, SagaTransition transition);

    /**
     * Replaces the instance whose stored version is {@code updated.version() - 1} and appends the
     * transition, atomically.
     *
     * @throws ConcurrentSagaUpdateException when the stored version differs (or the instance is gone)
     */
    void update(SagaInstance updated, SagaTransition transition);

    /**
     * As {@link #update(SagaInstance, SagaTransition)}, with the transition given by its parts (its saga id,
     * version and time are the instance's). The engine calls this on its fast path so that a store which
     * keeps no history need not build the transition at all; the default builds it and delegates, so a
     * store that overrides only {@link #update(SagaInstance, SagaTransition)} behaves exactly as before.
     *
     * @throws ConcurrentSagaUpdateException when the stored version differs (or the instance is gone)
     */
    default void update(SagaInstance updated, TransitionType type, String step, int attempt, String detail) {
        update(updated, new SagaTransition(updated.sagaId(), updated.version(), updated.updatedAt(), type, step, attempt,
                detail));
    }

    /**
     * Whether this store takes several transitions in one atomic write ({@link #insertAll}, {@link #updateAll}).
     * When true, and the store writes no outgoing messages, the engine writes the transitions that happen with
     * nothing acted on between them (step n succeeded and step n+1 started; the last step succeeded and the
     * saga completed) in one write, still before it acts: a local 3-step saga then costs 4 writes, not 8.
     * False by default: one write per transition.
     */
    default boolean writesTransitionBatches() {
        return false;
    }

    /**
     * Whether this store keeps the transitions {@link #history} returns. A store that takes transition
     * batches and keeps no history is given empty transition lists by {@link #insertAll} and
     * {@link #updateAll}: the engine then does not record them at all. True by default.
     */
    default boolean keepsHistory() {
        return true;
    }

    /**
     * As {@link #insert(SagaInstance, SagaTransition)} with several transitions, in order, all of version 1.
     * Only called when {@link #writesTransitionBatches()} is true. {@code transitions} is valid only during
     * the call and may build its elements on demand: a store that keeps no history need not touch it, one
     * that does copies the (immutable) elements it keeps.
     *
     * @throws ConcurrentSagaUpdateException when an instance with that id exists (nothing is written)
     */
    default void insertAll(SagaInstance instance, List<SagaTransition> transitions) {
        requireSingle(transitions);
        insert(instance, transitions.get(0));
    }

    /**
     * As {@link #update(SagaInstance, SagaTransition)} with several transitions, in order, all of the
     * updated instance's version (see {@link #insertAll} for the list's lifetime).
     *
     * @throws ConcurrentSagaUpdateException when the stored version differs (nothing is written)
     */
    default void updateAll(SagaInstance updated, List<SagaTransition> transitions) {
        requireSingle(transitions);
        update(updated, transitions.get(0));
    }

    private void requireSingle(List<SagaTransition> transitions) {
        if (transitions.size() != 1) {
            throw new ConfigurationException(getClass().getName() + " writes one transition at a time"
                    + " (writesTransitionBatches() is false), but was given " + transitions.size());
        }
    }

    /**
     * Whether this store writes a transition's outgoing messages in the transition's own atomic write
     * (and sees to their publication). False by default: the engine publishes them after the write.
     */
    default boolean storesOutgoingMessages() {
        return false;
    }

    /**
     * As {@link #insert(SagaInstance, SagaTransition)}, and writes {@code outgoing} atomically with it. The
     * messages carry deterministic ids and encoded ({@code byte[]}) payloads. Only called when
     * {@link #storesOutgoingMessages()} is true; the default refuses messages it cannot store.
     *
     * @throws ConcurrentSagaUpdateException when an instance with that id exists (nothing is written)
     */
    default void insert(SagaInstance instance, SagaTransition transition, List<Message> outgoing) {
        requireNoMessages(outgoing);
        insert(instance, transition);
    }

    /**
     * As {@link #update(SagaInstance, SagaTransition)}, and writes {@code outgoing} atomically with it (see
     * {@link #insert(SagaInstance, SagaTransition, List)}).
     *
     * @throws ConcurrentSagaUpdateException when the stored version differs (nothing is written)
     */
    default void update(SagaInstance updated, SagaTransition transition, List<Message> outgoing) {
        requireNoMessages(outgoing);
        update(updated, transition);
    }

    private void requireNoMessages(List<Message> outgoing) {
        if (!outgoing.isEmpty()) {
            throw new ConfigurationException(getClass().getName() + " does not store outgoing messages"
                    + " (storesOutgoingMessages() is false), but was given " + outgoing.size());
        }
    }

    Optional<SagaInstance> find(String sagaId);

    /**
     * Instances with that business key, oldest first. Unbounded: every one is read, with its data; {@link #findPage}
     * reads them a page at a time.
     */
    List<SagaInstance> findByBusinessKey(String businessKey);

    /**
     * Instances in any of the statuses, oldest first. Unbounded: every one is read, with its data (on a store holding
     * a million completed sagas, a million of them); {@link #findPage} reads them a page at a time.
     */
    List<SagaInstance> findByStatus(Set<SagaStatus> statuses);

    /**
     * One page of an operator's query: the instances {@link SagaQuery#matches matching} {@code query} (of its statuses,
     * its business key if given, last updated before its time if given, after its position), in
     * {@link RecoveryQuery#ORDER}, at most {@link SagaQuery#limit()} of them, never more. Keyset-paged on the
     * instances' creation time and id, which never change: an instance is on one page of a query at most, and one
     * that stops matching between two pages moves no other. No default: a store filters and pages where it keeps the
     * instances (an index on the status and creation time, and one on the business key, serve a durable store), and a
     * delegating store passes the call on, so that no store reads every instance for one page.
     */
    List<SagaInstance> findPage(SagaQuery query);

    /**
     * How many instances are in each of {@code statuses}, which holds at least one status and no null (the caller
     * checks, as the orchestrator's {@code countByStatus} does): a map of every one of them, in the enum's order, 0 for
     * a status no instance is in, and of no other status. For an operator's count and a metric's gauge, which ask for
     * it often: no instance's data is read. A durable store counts in one statement (one snapshot; an index on the
     * status serves it); a store without a snapshot may count a saga that changes status meanwhile under both statuses
     * or neither. No default: a store counts where it keeps the instances, and a delegating store passes the call on,
     * so that no store reads every instance to count them.
     */
    Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses);

    /**
     * {@link #countByStatus}, per saga name ({@link SagaInstance#sagaName()}): for each name of which at least one
     * instance is in one of {@code statuses} (which holds at least one status and no null; the caller checks), a map of
     * every one of them, in the enum's order, 0 for a status no instance of that name is in; a name with no instance in
     * any of them is left out. The names in their natural order. For a metric's gauge per saga (saga-micrometer's
     * {@code SagaStatusGauges}), which asks for it often: no instance's data is read, and the names are those of the
     * definitions stored sagas were started under, a bounded set. A durable store counts in one statement, as for
     * {@link #countByStatus}. No default, for the same reason.
     */
    Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses);

    /**
     * A page of the running or compensating instances a recovery may resume: those {@link RecoveryQuery#matches
     * matching} {@code query} (updated at or before its time, of no excluded owner, after its position), in
     * {@link RecoveryQuery#ORDER}, at most {@link RecoveryQuery#limit()} of them. The recovery asks for the next
     * page, after the last instance of this one, only when this one holds exactly the limit; so a store that cannot
     * page may return every matching instance at once, more than the limit. This default does so, from
     * {@link #findByStatus} filtered in memory (every unfinished instance read, with its data, at each recovery):
     * a store that can filter and page where it keeps the instances overrides it. A store that returns an instance of
     * an earlier page again (it ignores the position) makes the recovery stop there with an error logged, rather than
     * read the same page for ever. An instance whose stored data or step states the store cannot read is best returned
     * in its place with an {@link UnreadableSagaData} as data, rather than failing the page: the recovery reports it
     * unresolvable and reads on past it (a failed page fails the recovery, and every later one, at that saga).
     */
    default List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
        List<SagaInstance> found = new ArrayList<>();
        for (SagaInstance instance : findByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING))) {
            if (query.matches(instance)) {
                found.add(instance);
            }
        }
        found.sort(RecoveryQuery.ORDER);
        return found;
    }

    /** Running or compensating instances created before {@code createdBefore}, oldest first. */
    List<SagaInstance> findActiveCreatedBefore(Instant createdBefore);

    /** The transitions of an instance in the order they were stored (empty if unknown). */
    List<SagaTransition> history(String sagaId);

    /**
     * Deletes instances in a terminal status (completed, compensated, resolved) whose last update is
     * before {@code cutoff}, with their history. Returns how many were deleted.
     */
    int deleteFinishedBefore(Instant cutoff);

    /**
     * Deletes at most {@code maxSagas} of the instances {@link #deleteFinishedBefore(Instant)} deletes, with their
     * history; returns how many it deleted. The orchestrator's scheduled retention purge calls it batch after batch,
     * each a task of its own, so that the other timers of its scheduler run between them: a return of exactly
     * {@code maxSagas} queues the next batch at once, any other ends the run, so a store must return what it deleted
     * (one returning {@code maxSagas} while deleting nothing makes the purge call it again without end). The default
     * deletes them all in one call, {@code maxSagas} aside, and returns that count (more than {@code maxSagas} ends the
     * run): a store that keeps it purges its whole backlog in one task; a durable store should override it with a
     * short transaction per call.
     *
     * @throws ConfigurationException when {@code maxSagas} is not positive
     */
    default int deleteFinishedBefore(Instant cutoff, int maxSagas) {
        ConfigurationException.require(maxSagas > 0, "maxSagas must be positive, but was %s", maxSagas);
        return deleteFinishedBefore(cutoff);
    }
}
