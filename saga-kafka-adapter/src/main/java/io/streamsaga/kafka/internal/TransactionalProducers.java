package io.streamsaga.kafka.internal;

import org.apache.kafka.clients.producer.Producer;

import java.time.Duration;

/**
 * The transactional producers of one exactly-once member, all with the member's transactional id. A batch
 * open longer than {@link #transactionTimeout()} is aborted by the broker, which fences the producer's
 * epoch; the {@link ConsumerLoop} then aborts it too, which gives the producer a new epoch on a cluster at
 * {@code transaction.version} 2 (Kafka 4.0 on). At version 1 the coordinator refuses that abort as it refuses
 * a fenced producer's, and the loop asks {@link #abortedForTimeout()} before it replaces its producer through
 * {@link #create()}. Used by the loop thread only (and by the subscribing thread before it starts).
 */
public interface TransactionalProducers {

    /** A new producer with the member's transactional id, transactions initialised. */
    Producer<String, byte[]> create();

    /** The producers' {@code transaction.timeout.ms}: the broker aborts a transaction open longer. */
    Duration transactionTimeout();

    /**
     * Whether the coordinator's state for the id is the abort of a transaction of the last producer
     * {@link #create()} returned, for its timeout: an abort, at the next epoch of that producer's id, which
     * another producer's initialisation would have moved on (except in the moment between its fence of an
     * open transaction and its retried initialisation). False when that cannot be told.
     */
    boolean abortedForTimeout();
}
