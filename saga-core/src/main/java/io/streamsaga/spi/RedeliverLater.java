package io.streamsaga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

import java.time.Duration;
import java.util.Objects;

/**
 * Thrown by a {@link RecordHandler} to have its record delivered again after {@link #delay()}, to a
 * transport that {@link Transport#redeliversPerPartition() redelivers per partition}: the record's partition
 * waits (nothing after the record is delivered before it, so order per key holds) while the subscription's
 * other partitions keep flowing. The bus throws it between the attempts of its retry policy instead of
 * sleeping on the consumer thread. Not an error: a transport logs it at debug. Immutable.
 *
 * <p>One made by {@link #declined} says the handler did nothing for the record (no send, no state): a transport
 * commits its partition's position up to the record (past any transaction markers before it), and one that handles
 * several records in a transaction (Kafka in exactly-once mode) commits what the other records did rather than
 * aborting it; the record and those after it in its partition are delivered again after the delay. A handler that
 * did act for the record must throw one made by the constructor, which withdraws the transaction.
 */
public final class RedeliverLater extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    private final transient Duration delay;
    private final boolean declined;

    /**
     * @param delay how long the record's partition waits before the record is delivered again; one longer than
     *              {@link ConfigurationException#MAX_DURATION} is taken as that, a negative one as zero (a transport
     *              counts it in nanoseconds)
     * @param cause the failure of the attempt that asked for it
     */
    public RedeliverLater(Duration delay, Throwable cause) {
        this(delay, cause, false);
    }

    private RedeliverLater(Duration delay, Throwable cause, boolean declined) {
        super("redeliver after " + delay, cause, true);
        Objects.requireNonNull(delay, "delay");
        this.delay = delay.compareTo(ConfigurationException.MAX_DURATION) > 0 ? ConfigurationException.MAX_DURATION
                : delay.isNegative() ? Duration.ZERO : delay;
        this.declined = declined;
    }

    /**
     * For a record its handler declined without acting on it (as a dead-letter redrive does with a letter past the
     * end it took at its start): delivered again after {@code delay}, as by the constructor, without withdrawing what
     * the handler's earlier records of a transaction did (see the class comment).
     *
     * @param delay as for the constructor
     * @param cause why the handler declined it
     */
    public static RedeliverLater declined(Duration delay, Throwable cause) {
        return new RedeliverLater(delay, cause, true);
    }

    public Duration delay() {
        return delay;
    }

    /** Whether it was made by {@link #declined}: the handler did nothing for the record. */
    public boolean declined() {
        return declined;
    }
}
