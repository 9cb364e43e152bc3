package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.Strings;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The persisted state of one saga instance. Immutable and thread-safe (the saga data must be immutable
 * too: records are recommended).
 *
 * <p>{@code data} is the application's saga data object, or its JSON tree ({@code JsonNode}) when a
 * durable store read it back: durable stores serialise it to JSON under {@link #dataType()}, an explicit
 * type id, never a Java class name. The in-memory store keeps the object itself, so the fast path never
 * serialises.
 *
 * @param sagaId              unique id of the instance
 * @param sagaName            the definition's name
 * @param definitionVersion   the definition version it runs under
 * @param businessKey         the application's key (an order id), may be null
 * @param dataType            stable type id of the saga data
 * @param data                the saga data (object or JSON tree)
 * @param status              where the saga is
 * @param steps               one state per step, in definition order
 * @param failure             the original failure that made the saga compensate, or null
 * @param compensationFailure the compensation failure that needs attention, or null
 * @param createdAt           when it started
 * @param updatedAt           its last transition
 * @param version             optimistic-concurrency version, 1 after the start, +1 per update
 * @param owner               the node id of the orchestrator that last wrote it when that orchestrator has saga
 *                            ownership configured ({@code SagaOrchestrator.Builder#ownership}); null otherwise, and
 *                            for instances written before ownership existed
 */
public record SagaInstance(String sagaId, String sagaName, int definitionVersion, String businessKey, String dataType,
                           Object data, SagaStatus status, List<StepState> steps, SagaFailure failure,
                           SagaFailure compensationFailure, Instant createdAt, Instant updatedAt, long version,
                           String owner) {

    public SagaInstance {
        // Plain ifs, not ConfigurationException.require(...): its varargs would allocate on every transition.
        if (!Strings.notBlank(sagaId)) {
            throw new ConfigurationException("sagaId must not be blank, but was " + StreamSagaException.quote(sagaId));
        }
        if (!Strings.notBlank(sagaName)) {
            throw new ConfigurationException("sagaName must not be blank, but was " + StreamSagaException.quote(sagaName));
        }
        if (definitionVersion < 1) {
            throw new ConfigurationException("definitionVersion must be 1 or more, but was " + definitionVersion);
        }
        if (!Strings.notBlank(dataType)) {
            throw new ConfigurationException("dataType must not be blank, but was " + StreamSagaException.quote(dataType));
        }
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(createdAt, "createdAt");
        Objects.requireNonNull(updatedAt, "updatedAt");
        if (version < 1) {
            throw new ConfigurationException("version must be 1 or more, but was " + version);
        }
        steps = List.copyOf(steps);
    }

    /** An instance with no owner (written without saga ownership): the form of the instances before it existed. */
    public SagaInstance(String sagaId, String sagaName, int definitionVersion, String businessKey, String dataType,
                        Object data, SagaStatus status, List<StepState> steps, SagaFailure failure,
                        SagaFailure compensationFailure, Instant createdAt, Instant updatedAt, long version) {
        this(sagaId, sagaName, definitionVersion, businessKey, dataType, data, status, steps, failure, compensationFailure,
                createdAt, updatedAt, version, null);
    }

    /** This instance as written by the orchestrator of node {@code owner} (null: none), all else equal. */
    public SagaInstance withOwner(String owner) {
        return new SagaInstance(sagaId, sagaName, definitionVersion, businessKey, dataType, data, status, steps, failure,
                compensationFailure, createdAt, updatedAt, version, owner);
    }

    /** The state of the named step. */
    public Optional<StepState> step(String name) {
        for (StepState step : steps) {
            if (step.name().equals(name)) {
                return Optional.of(step);
            }
        }
        return Optional.empty();
    }
}
