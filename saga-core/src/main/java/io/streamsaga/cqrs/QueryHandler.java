package io.streamsaga.cqrs;

/**
 * Answers one query type from a read model. Must be thread-safe: queries run concurrently with each other
 * and with the projections that update the read model.
 *
 * @param <Q> the query type
 * @param <R> the answer type
 */
@FunctionalInterface
public interface QueryHandler<Q extends Query<R>, R> {
    R handle(Q query);
}
