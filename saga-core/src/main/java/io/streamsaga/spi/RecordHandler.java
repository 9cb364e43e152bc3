package io.streamsaga.spi;

/**
 * The bus's callback into a transport subscription. Returning normally means the record is done for the
 * group and its position may be committed (unless the bus handed the transport the rest of the delivery during the
 * call, {@link Transport#finishLater}: then once that is finished); throwing means it was not, and the transport must
 * deliver it again (at-least-once). The bus itself retries and dead-letters, so a throw reaches the transport only
 * when even dead-lettering failed, or between two attempts of a retry ({@link RedeliverLater}).
 */
@FunctionalInterface
public interface RecordHandler {
    void handle(TransportRecord record) throws Exception;

    /**
     * Tells the handler that what it learnt about the records of {@code partition} of {@code topic} may be stale: the
     * transport took the partition from this subscription (revoked or lost in a rebalance), or gives it back after
     * another member of the group had it, so the record at an offset may have been handled elsewhere meanwhile, or be
     * another record (a topic deleted and created again). Not for a partition a rebalance revokes and gives straight
     * back to the subscription with no other member having had it (Kafka's eager assignors revoke every partition at
     * every rebalance): what was learnt of it holds. Called on the thread that delivers the partition's records,
     * never while one of them is handled; the default keeps nothing, so forgets nothing.
     *
     * @param topic     the partition's topic
     * @param partition the partition
     */
    default void forgetPartition(String topic, int partition) {
    }
}
