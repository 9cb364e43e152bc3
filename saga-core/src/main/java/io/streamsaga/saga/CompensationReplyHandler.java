package io.streamsaga.saga;

/**
 * Checks the reply to a remote compensation's command. Returning completes the compensation; throwing fails
 * the attempt (retried per the step's compensation retry policy), for instance when the participant says
 * it could not undo.
 *
 * @param <D> the saga data type
 * @param <R> the reply event type
 */
@FunctionalInterface
public interface CompensationReplyHandler<D, R> {
    void onReply(D data, R reply) throws Exception;
}
