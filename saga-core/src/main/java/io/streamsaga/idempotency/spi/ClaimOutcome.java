package io.streamsaga.idempotency.spi;

/** What {@link DeduplicationStore#tryClaim} found for a key. */
public enum ClaimOutcome {
    /** The caller now holds the claim and must {@code complete} or {@code release} it. */
    ACQUIRED,
    /** Another owner holds an unexpired claim: the key is being processed right now. */
    IN_PROGRESS,
    /** The key was completed within the window: it is a duplicate. */
    DONE
}
