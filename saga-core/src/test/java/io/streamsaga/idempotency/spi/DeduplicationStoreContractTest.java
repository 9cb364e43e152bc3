package io.streamsaga.idempotency.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.spi.StoredKeys;
import static org.junit.jupiter.api.Assertions.assertThrows;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What every {@link DeduplicationStore} must do. Subclass it next to an implementation and create a fresh,
 * empty store per call. Time is passed in, so the suite never sleeps.
 */
public abstract class DeduplicationStoreContractTest {
    protected static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final Duration LEASE = Duration.ofSeconds(30);

    /** A fresh, empty store remembering done keys for {@code window}, at most {@code maxEntries} of them. */
    protected abstract DeduplicationStore createStore(Duration window, long maxEntries);

    private DeduplicationStore store() {
        return createStore(Duration.ofHours(1), 1_000);
    }

    @Test
    void concurrentClaimsOfOneKeyAcquireExactlyOnce() throws Exception {
        DeduplicationStore store = store();
        int threads = 8;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<ClaimOutcome>> outcomes = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                String owner = "owner-" + i;
                outcomes.add(pool.submit(() -> {
                    start.await();
                    return store.tryClaim("k", owner, T0, LEASE);
                }));
            }
            start.countDown();
            int acquired = 0;
            for (Future<ClaimOutcome> outcome : outcomes) {
                ClaimOutcome result = outcome.get(10, TimeUnit.SECONDS);
                if (result == ClaimOutcome.ACQUIRED) {
                    acquired++;
                } else {
                    assertEquals(ClaimOutcome.IN_PROGRESS, result);
                }
            }
            assertEquals(1, acquired);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void completedKeyIsDoneForEveryone() {
        DeduplicationStore store = store();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "a", T0, LEASE));
        assertTrue(store.complete("k", "a", T0.plusSeconds(1)));
        assertTrue(store.isDone("k", T0.plusSeconds(2)));
        assertEquals(ClaimOutcome.DONE, store.tryClaim("k", "b", T0.plusSeconds(2), LEASE));
        assertEquals(ClaimOutcome.DONE, store.tryClaim("k", "a", T0.plusSeconds(2), LEASE));
    }

    @Test
    void keysOfAnyLengthAreTakenAndKeysSharingALongPrefixStayApart() {
        // an IdempotentConsumer's default key is its group, a slash and the message id, whose length nothing bounds
        DeduplicationStore store = store();
        String key = "g/" + "m".repeat(4_000);
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(key + "1", "a", T0, LEASE));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(key + "2", "b", T0, LEASE));
        assertTrue(store.complete(key + "1", "a", T0));
        assertTrue(store.isDone(key + "1", T0));
        assertFalse(store.isDone(key + "2", T0));
        assertEquals(ClaimOutcome.DONE, store.tryClaim(key + "1", "b", T0, LEASE));
    }

    @Test
    void claimOfACrashedOwnerExpiresAfterItsLease() {
        DeduplicationStore store = store();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "crashed", T0, LEASE));
        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim("k", "b", T0.plus(LEASE).minusMillis(1), LEASE));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "b", T0.plus(LEASE), LEASE));
        assertFalse(store.complete("k", "crashed", T0.plus(LEASE).plusSeconds(1)), "the former owner lost the key");
        assertTrue(store.complete("k", "b", T0.plus(LEASE).plusSeconds(1)));
    }

    @Test
    void releasedClaimCanBeClaimedAgainAtOnce() {
        DeduplicationStore store = store();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "a", T0, LEASE));
        store.release("k", "a");
        assertFalse(store.isDone("k", T0));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "b", T0, LEASE));
    }

    @Test
    void releaseByAnotherOwnerLeavesTheClaim() {
        DeduplicationStore store = store();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "a", T0, LEASE));
        store.release("k", "intruder");
        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim("k", "b", T0, LEASE));
    }

    @Test
    void doneKeyIsForgottenWhenTheWindowEnds() {
        DeduplicationStore store = createStore(Duration.ofMinutes(10), 1_000);
        store.tryClaim("k", "a", T0, LEASE);
        store.complete("k", "a", T0);
        assertTrue(store.isDone("k", T0.plus(Duration.ofMinutes(10)).minusMillis(1)));
        assertFalse(store.isDone("k", T0.plus(Duration.ofMinutes(10))));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "b", T0.plus(Duration.ofMinutes(11)), LEASE));
    }

    @Test
    void oldestDoneKeysAreEvictedBeyondMaxEntries() {
        DeduplicationStore store = createStore(Duration.ofHours(1), 3);
        for (int i = 0; i < 5; i++) {
            Instant at = T0.plusSeconds(i);
            store.tryClaim("k" + i, "a", at, LEASE);
            assertTrue(store.complete("k" + i, "a", at));
        }
        Instant later = T0.plusSeconds(10);
        assertFalse(store.isDone("k0", later));
        assertFalse(store.isDone("k1", later));
        assertTrue(store.isDone("k2", later));
        assertTrue(store.isDone("k3", later));
        assertTrue(store.isDone("k4", later));
    }

    @Test
    void reportsItsBounds() {
        DeduplicationStore store = createStore(Duration.ofMinutes(42), 7);
        assertEquals(Duration.ofMinutes(42), store.window());
        assertEquals(7, store.maxEntries());
    }

    /**
     * An owner holding U+0000 or a lone surrogate is refused with a ConfigurationException, nothing claimed, as a
     * durable store must ({@code StoredKeys}); one completing or releasing holds no claim. A key holding one is an
     * ordinary key (keys are the application's message ids: a store maps them to a form it can keep).
     */
    @Test
    void anOwnerHoldingANulOrALoneSurrogateIsRefusedAndAKeyHoldingOneIsAKeyLikeAnother() {
        DeduplicationStore store = store();
        for (String bad : List.of("o\0", "o\uD800", "o\uDC00x")) {
            assertThrows(ConfigurationException.class, () -> store.tryClaim("k", bad, T0, LEASE));
            assertFalse(store.complete("k", bad, T0));
            store.release("k", bad);
            assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k-" + bad, "owner", T0, LEASE));
        }
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", "owner", T0, LEASE), "the refused claims took nothing");
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k\uD800", "owner", T0, LEASE));
        assertTrue(store.complete("k\uD800", "owner", T0));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k\uDC00", "owner", T0, LEASE),
                "keys differing only in a lone surrogate are two keys");
    }

    /**
     * Every store keeps an owner up to {@link StoredKeys#MAX_DEDUP_OWNER_LENGTH} (the JDBC column's width) and refuses
     * a longer one, alike; a key has no limit (a durable store keeps a long one under a digest).
     */
    @Test
    void anOwnerUpToItsStoredLengthIsKeptALongerOneRefusedAndAKeyOfAnyLengthIsAKeyLikeAnother() {
        DeduplicationStore store = store();
        String owner = "o".repeat(StoredKeys.MAX_DEDUP_OWNER_LENGTH);
        assertThrows(ConfigurationException.class, () -> store.tryClaim("k", owner + "o", T0, LEASE));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("k", owner, T0, LEASE), "the refused claim took nothing");
        assertTrue(store.complete("k", owner, T0));
        String longKey = "k".repeat(10_000);
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(longKey, owner, T0, LEASE));
        assertTrue(store.complete(longKey, owner, T0));
        assertEquals(ClaimOutcome.DONE, store.tryClaim(longKey, "other", T0, LEASE));
    }
}
