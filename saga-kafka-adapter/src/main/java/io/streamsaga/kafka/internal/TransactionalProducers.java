package io.streamsaga.kafka.internal;

import org.apache.kafka.clients.producer.Producer;

import java.time.Duration;

/**
 * The transactional producers of one exactly-once member, all with the member's transactional id: the
 * {@link ConsumerLoop} replaces its producer through this when the broker aborted a transaction that
 * outlived {@code transaction.timeout.ms} (the producer is then fenced for good, although no other instance
 * took the id). Used by the loop thread only.
 */
public interface TransactionalProducers {

    /** A new producer with the member's transactional id, transactions initialised. */
    Producer<String, byte[]> create();

    /**
     * Whether a transaction open for {@code openFor} was aborted by the broker for its timeout and no other
     * producer has taken the transactional id since: the id's transaction is open longer than its timeout,
     * and the coordinator's state for the id is still that abort. False when that cannot be told (then the
     * member was fenced by another instance, as far as it knows).
     */
    boolean abortedForTimeout(Duration openFor);
}
