package io.streamsaga.idempotency.spi;

import java.time.Duration;
import java.time.Instant;

/**
 * Remembers which keys (message ids) were processed, for the idempotent consumer and producer.
 *
 * <p>A key is either absent, claimed (being processed, with a lease that ends) or done. Claims are
 * atomic: of two concurrent {@link #tryClaim} calls for one key exactly one gets
 * {@link ClaimOutcome#ACQUIRED}. A claim whose lease ended (its holder crashed) counts as absent, so no key
 * stays locked forever. A done key is remembered for {@link #window()} and, beyond
 * {@link #maxEntries()} done keys, the oldest are evicted; implementations report evictions to their
 * metrics, because an evicted key that is redelivered will be processed again.
 *
 * <p>Keys are strings of any length (an {@code IdempotentConsumer}'s default key is its group and a message id,
 * whose length nothing bounds): a store that keeps them in a bounded column maps long keys to distinct stored
 * forms (a digest, say) rather than refusing or cutting them; so too a key holding U+0000 or a lone surrogate. An
 * owner holding either, or longer than {@link io.streamsaga.spi.StoredKeys#MAX_DEDUP_OWNER_LENGTH}, is refused by {@link #tryClaim} with an {@link io.streamsaga.ConfigurationException}, as a
 * durable store must ({@link io.streamsaga.spi.StoredKeys}); it then holds no claim.
 *
 * <p>Time is passed in by the caller (from the library's {@code Scheduler}), so implementations never
 * read a clock and the contract suite runs on virtual time. Implementations are thread-safe and may be
 * shared by several processes (a durable store) — atomicity must then hold across them.
 */
public interface DeduplicationStore {

    /**
     * Claims {@code key} for {@code owner} until {@code now + lease}, unless it is done or claimed by
     * another owner whose lease has not ended. Re-claiming by the same owner renews the lease.
     */
    ClaimOutcome tryClaim(String key, String owner, Instant now, Duration lease);

    /**
     * Marks {@code key} done at {@code now}. Returns false (and changes nothing) when {@code owner} no longer
     * holds the claim, because its lease ended and another owner took the key over.
     */
    boolean complete(String key, String owner, Instant now);

    /** Drops {@code owner}'s claim on {@code key} so that a retry can claim it; no effect otherwise. */
    void release(String key, String owner);

    /** Whether {@code key} is done and still inside the window at {@code now}. */
    boolean isDone(String key, Instant now);

    /** How long a done key is remembered. */
    Duration window();

    /** How many done keys are remembered at most. */
    long maxEntries();
}
