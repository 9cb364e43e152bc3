package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

import java.time.Instant;
import java.util.Objects;

/**
 * One persisted transition of a saga instance: the history a recorded run is replayed and drawn from.
 * Immutable and thread-safe.
 *
 * @param sagaId  the saga instance
 * @param version the instance version this transition produced (1 for the start); transitions stored in one
 *                write ({@code SagaStore#updateAll}) share it
 * @param at      when it happened (the orchestrator's scheduler clock)
 * @param type    what happened
 * @param step    the step concerned, or null for saga-level transitions
 * @param attempt the attempt number of the step's action or compensation, 0 for saga-level transitions
 * @param detail  an error description or other detail, may be null
 */
public record SagaTransition(String sagaId, long version, Instant at, TransitionType type, String step, int attempt,
                             String detail) {

    public SagaTransition {
        // Plain ifs: ConfigurationException.require's varargs would allocate on every transition.
        if (sagaId == null || sagaId.isBlank()) {
            throw new ConfigurationException("sagaId must not be blank, but was " + StreamSagaException.quote(sagaId));
        }
        if (version < 1) {
            throw new ConfigurationException("version must be 1 or more, but was " + version);
        }
        Objects.requireNonNull(at, "at");
        Objects.requireNonNull(type, "type");
    }
}
