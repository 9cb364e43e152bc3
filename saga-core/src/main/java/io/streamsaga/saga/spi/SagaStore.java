package io.streamsaga.saga.spi;

import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Where saga instances and their transitions live. Every transition is written here before the engine
 * acts on it, so a new orchestrator over the same store resumes every unfinished saga.
 *
 * <p>Optimistic concurrency: each instance has a version; {@link #update} succeeds only when the stored
 * version is the expected one, so two orchestrators never drive the same saga at once. Implementations
 * must be thread-safe and pass {@code SagaStoreContractTest} from saga-core's test-jar. Durable stores
 * serialise the saga data to JSON under {@link SagaInstance#dataType()} and may return it as a
 * {@code JsonNode}; the engine binds it to the definition's data class.
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

    Optional<SagaInstance> find(String sagaId);

    /** Instances with that business key, oldest first. */
    List<SagaInstance> findByBusinessKey(String businessKey);

    /** Instances in any of the statuses, oldest first. */
    List<SagaInstance> findByStatus(Set<SagaStatus> statuses);

    /** Running or compensating instances created before {@code createdBefore}, oldest first. */
    List<SagaInstance> findActiveCreatedBefore(Instant createdBefore);

    /** The transitions of an instance in the order they were stored (empty if unknown). */
    List<SagaTransition> history(String sagaId);

    /**
     * Deletes instances in a terminal status (completed, compensated, resolved) whose last update is
     * before {@code cutoff}, with their history. Returns how many were deleted.
     */
    int deleteFinishedBefore(Instant cutoff);
}
