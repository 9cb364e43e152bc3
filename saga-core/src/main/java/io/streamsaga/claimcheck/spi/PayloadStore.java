package io.streamsaga.claimcheck.spi;

import io.streamsaga.ConfigurationException;

import java.time.Instant;
import java.util.Optional;

/**
 * Holds claim-checked payloads. Ids are content addresses (the SHA-256 of the content, in hex, computed
 * by the caller), so identical payloads are stored once. Each payload has a set of holders (the records
 * that reference it; the interceptor passes a hash of a record's topic, message id and hold token):
 * {@link #release} removes one, and the payload is deleted when the last one goes; independently,
 * {@link #deleteStoredBefore} deletes payloads older than an expiry whatever their holders, so nothing
 * stays orphaned forever.
 *
 * <p>Ids come back from message headers, which are untrusted: implementations must refuse ids that are
 * not 1 to 128 characters of {@code [A-Za-z0-9_-]} (a {@link io.streamsaga.ConfigurationException}), and
 * {@link #put} a holder holding U+0000 or a lone surrogate or longer than
 * {@link io.streamsaga.spi.StoredKeys#MAX_HOLDER_LENGTH} ({@link io.streamsaga.spi.StoredKeys}; a release by one
 * releases nothing).
 * Time is passed in, never read from a clock. Implementations are thread-safe; failures of the underlying
 * storage are {@link io.streamsaga.claimcheck.ClaimCheckException}s that are retriable.
 */
public interface PayloadStore {

    /**
     * Stores {@code content} under {@code id} unless present, adds {@code holder} to its holders, and marks
     * it stored at {@code now} (a re-put refreshes the time, so an expiry counts from the latest use).
     */
    void put(String id, byte[] content, String holder, Instant now);

    /** The content stored under {@code id}, if any. */
    Optional<byte[]> get(String id);

    /**
     * Removes {@code holder} from the payload's holders and deletes the payload when that was the last one.
     * Returns whether the payload was deleted. An unknown holder or id changes nothing.
     */
    boolean release(String id, String holder);

    /** Deletes every payload last stored before {@code cutoff}, held or not; returns how many. */
    int deleteStoredBefore(Instant cutoff);

    /**
     * Deletes at most {@code maxPayloads} of the payloads {@link #deleteStoredBefore(Instant)} deletes; returns how
     * many it deleted. The interceptor's expiry sweep calls it batch after batch, each a task of its own, so that the
     * other timers of its scheduler run between them: a return of exactly {@code maxPayloads} queues the next batch at
     * once, any other ends the run, so a store must return what it deleted (one returning {@code maxPayloads} while
     * deleting nothing makes the sweep call it again without end). The default deletes them all in one call,
     * {@code maxPayloads} aside, and returns that count (more than {@code maxPayloads} ends the run): a store that
     * keeps it sweeps its whole backlog in one task; a durable store should override it with a short transaction per
     * call.
     *
     * @throws ConfigurationException when {@code maxPayloads} is not positive
     */
    default int deleteStoredBefore(Instant cutoff, int maxPayloads) {
        ConfigurationException.require(maxPayloads > 0, "maxPayloads must be positive, but was %s",
                maxPayloads);
        return deleteStoredBefore(cutoff);
    }
}
