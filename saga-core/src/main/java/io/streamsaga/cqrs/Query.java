package io.streamsaga.cqrs;

/**
 * Marks a query of the read side; {@code R} is its answer. Queries are immutable values, typically records.
 *
 * @param <R> the answer type
 */
public interface Query<R> {
}
