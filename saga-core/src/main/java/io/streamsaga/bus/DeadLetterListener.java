package io.streamsaga.bus;

/**
 * Hears of the records one subscription gave up on: called after the bus sent a record's dead letter to
 * {@code <topic>.DLT} (it was undecodable, rejected by an interceptor, or its handler failed for good) and
 * before the record is acknowledged. For code that tracks a subscription's progress by what it handled
 * (a replay waiting for its target), a dead-lettered record is passed too. Called on the consumer's thread;
 * what it throws is logged and does not change the record's fate. Set with
 * {@link SubscriptionOptions#withDeadLetterListener}; for every subscription of a bus use
 * {@link MessageInterceptor#onDeadLettered} instead.
 */
@FunctionalInterface
public interface DeadLetterListener {

    /**
     * @param context the record as delivered: its message as received, group, partition, offset, and the
     *                attempts made (0 when no handler ran)
     * @param reason  the dead letter's {@code dlt-reason} header
     */
    void onDeadLettered(DeliveryContext context, String reason);
}
