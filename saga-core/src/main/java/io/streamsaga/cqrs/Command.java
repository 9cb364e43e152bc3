package io.streamsaga.cqrs;

/**
 * Marks a command of the write side; {@code R} is what a successful execution returns (an id, say).
 * Commands are immutable values, typically records.
 *
 * @param <R> the result type
 */
public interface Command<R> {
}
