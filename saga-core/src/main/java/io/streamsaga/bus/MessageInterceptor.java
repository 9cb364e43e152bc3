package io.streamsaga.bus;

import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;

/**
 * Sees every message the bus publishes and every message it hands to a handler, so that a cross-cutting
 * concern (the claim check, tracing) is enabled with one line on the bus builder. Interceptors run in the
 * order they were added on publish, and in reverse order on receive. Must be thread-safe.
 */
public interface MessageInterceptor {

    /** Called before the transport sees the message; may return a changed copy. */
    default Message beforePublish(Message message, EventCodec codec) {
        return message;
    }

    /**
     * Called before decoding for a consumer group; may return a changed copy, never null. Throwing a
     * retriable {@link io.streamsaga.StreamSagaException} has the message delivered again later; throwing
     * anything else (a non-retriable one, any other exception, an {@link AssertionError} or
     * {@link StackOverflowError}) dead-letters the message at once (reason {@code rejected-on-receive}, with
     * that error's class and message), as does returning null. Other errors are left to the transport, as
     * for handlers (see {@link EventBus}).
     */
    default Message afterReceive(Message message, String group) {
        return message;
    }

    /**
     * The group handled the message successfully (its position will be committed). Called once the delivery stays
     * handled ({@link io.streamsaga.spi.Transport#afterDelivery}): right after the handler returned on most
     * transports; on Kafka in exactly-once mode once the poll batch's transaction committed, and not at all for a
     * delivery that an aborted transaction withdrew (the message is delivered again). An exception thrown here
     * is logged and changes nothing: the message is not handled again.
     */
    default void onAcknowledged(Message message, String group) {
    }

    /**
     * One attempt of the group's handler on the message failed with {@code error} (an exception, or any
     * {@link Error}), called on the handler's thread before the bus goes on as it always does: the attempt
     * is retried or the message dead-lettered per the subscription's retry policy, and an Error other than an
     * {@link AssertionError} or {@link StackOverflowError} goes on to the transport (see {@link EventBus}). For
     * observing failures (a test kit failing its test with a fake participant's failed assertion); an
     * exception thrown here is logged and changes nothing.
     */
    default void onHandlerFailed(Message message, String group, Throwable error) {
    }

    /**
     * The group gave up on the message and dead-lettered it (the dead letter is sent). Called once the dead letter
     * stays sent, as {@link #onAcknowledged} is (a dead letter in a Kafka transaction that aborts is withdrawn with
     * it, and the message delivered again). An exception thrown here is logged and changes nothing: the message is
     * not handled again.
     */
    default void onDeadLettered(Message message, String group) {
    }
}
