package io.streamsaga.spi;

/**
 * The rest of a delivery whose handler returned while publishes it made on its thread were still in flight: waiting
 * for them, and handling a failed one as the record's failure. Handed to a transport that takes the wait over
 * ({@link Transport#finishLater}), so that it can wait for many records' publishes at once rather than for each
 * record's before delivering the next.
 */
@FunctionalInterface
public interface PendingDelivery {
    /**
     * Waits for the publishes, then ends the delivery as {@link RecordHandler#handle} would have: returns normally when
     * the record is done for the group (its publishes completed, or it was dead-lettered after they failed), so that
     * its position may be committed; throws when it is not (a {@link RedeliverLater} between two attempts of the bus's
     * retry policy, or the failure of its dead letter), and the transport must deliver it again. Called once, on the
     * thread that delivered the record, after its handler returned and before the transport commits a position past
     * the record; never while another record is handled on that thread.
     *
     * @throws InterruptedException when the thread is interrupted while it waits (the transport closing)
     * @throws Exception            as {@link RecordHandler#handle} throws
     */
    void finish() throws Exception;
}
