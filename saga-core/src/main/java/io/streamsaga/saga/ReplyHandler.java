package io.streamsaga.saga;

/**
 * Applies a remote step's reply to the saga data. Returning completes the step; throwing fails the
 * attempt (for instance when the reply says "payment declined").
 *
 * @param <D> the saga data type
 * @param <R> the reply event type
 */
@FunctionalInterface
public interface ReplyHandler<D, R> {
    D onReply(D data, R reply) throws Exception;
}
