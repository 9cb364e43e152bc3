package io.streamsaga.cqrs;

import java.util.List;
import java.util.Objects;

/**
 * The outcome of sending a command, as a value rather than an exception, so callers handle every case
 * (with {@code instanceof} patterns, or a pattern {@code switch} on Java 21): accepted with a result, rejected by validation (nothing executed), or failed
 * while executing. Immutable.
 *
 * @param <R> the result type
 */
public sealed interface CommandResult<R> {

    /** Whether the command was executed successfully. */
    default boolean isAccepted() {
        return this instanceof Accepted<R>;
    }

    /**
     * The command was valid and executed.
     *
     * @param value what the handler returned
     */
    record Accepted<R>(R value) implements CommandResult<R> {
    }

    /**
     * Validation found problems; the handler did not execute.
     *
     * @param violations every problem found, never empty
     */
    record Rejected<R>(List<Violation> violations) implements CommandResult<R> {
        public Rejected {
            violations = List.copyOf(violations);
            if (violations.isEmpty()) {
                throw new IllegalArgumentException("a rejection needs at least one violation");
            }
        }
    }

    /**
     * Executing the command threw, or validating it threw (then nothing executed).
     *
     * @param error what the handler threw: an exception, or an {@link AssertionError} or {@link StackOverflowError}
     *              (see {@link CommandBus#send})
     */
    record Failed<R>(Throwable error) implements CommandResult<R> {
        public Failed {
            Objects.requireNonNull(error, "error");
        }
    }
}
