package io.streamsaga.jdbc.idempotency;

import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.idempotency.spi.DeduplicationStoreContractTest;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.Around;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.metrics.MetricsRecorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The deduplication store contract plus what only a durable store has (several processes, bounded
 * purges); subclasses pick PostgreSQL or H2.
 */
abstract class JdbcDeduplicationStoreTest extends DeduplicationStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private JdbcDeduplicationStore.Builder builder() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcDeduplicationStore.builder(db.database().dataSource());
    }

    @Override
    protected DeduplicationStore createStore(Duration window, long maxEntries) {
        return builder().window(window).maxEntries(maxEntries).build();
    }

    @Test
    void aSecondProcessSeesKeysCompletedByTheFirst() {
        JdbcDeduplicationStore first = builder().build();
        JdbcDeduplicationStore restarted = builder().build();
        assertEquals(ClaimOutcome.ACQUIRED, first.tryClaim("m-1", "node-a", T0, Duration.ofSeconds(30)));
        assertTrue(first.complete("m-1", "node-a", T0));
        assertEquals(ClaimOutcome.DONE, restarted.tryClaim("m-1", "node-b", T0.plusSeconds(1), Duration.ofSeconds(30)));
    }

    @Test
    void storesWithDifferentNamesKeepTheirKeysApart() {
        JdbcDeduplicationStore billing = builder().name("billing").build();
        JdbcDeduplicationStore shipping = builder().name("shipping").build();
        billing.tryClaim("m-1", "a", T0, Duration.ofSeconds(30));
        billing.complete("m-1", "a", T0);
        assertTrue(billing.isDone("m-1", T0));
        assertFalse(shipping.isDone("m-1", T0));
    }

    @Test
    void aKeyLongerThanItsColumnIsStoredUnderItsDigestSoLongKeysSharingAPrefixStayApart() {
        // Both databases cut a value cast to VARCHAR(500) to its first 500 characters, so such keys were refused;
        // but a consumer's default key (group + "/" + a message id of up to 500) can be longer, and the in-memory
        // store takes any key. A long key is now stored as a prefix, a mark and its SHA-256.
        JdbcDeduplicationStore store = builder().build();
        String longest = "k".repeat(500);
        String longer = longest + "-1";
        String other = longest + "-2";
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(longest, "a", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(longer, "a", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(other, "b", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim(longer, "c", T0, Duration.ofSeconds(30)));
        assertTrue(store.complete(longest, "a", T0));
        assertTrue(store.complete(longer, "a", T0));
        store.release(other, "b");

        assertTrue(store.isDone(longest, T0));
        assertTrue(store.isDone(longer, T0));
        assertFalse(store.isDone(other, T0));
        assertEquals(ClaimOutcome.DONE, store.tryClaim(longer, "c", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(other, "c", T0, Duration.ofSeconds(30)), "its claim was released");
        assertEquals(1, db.database().queryLong("SELECT COUNT(*) FROM ss_dedup WHERE dedup_key = '" + longest + "'"),
                "a key that fits is stored as it is, as before");
        assertEquals(2, db.database().queryLong("SELECT COUNT(*) FROM ss_dedup WHERE LENGTH(dedup_key) = 500"
                + " AND dedup_key LIKE '" + "k".repeat(428) + "#sha256:%'"));
    }

    @Test
    void aKeyWithANulCharacterIsStoredUnderItsDigestOnBothDatabasesAndKeysDifferingAfterItStayApart() {
        // PostgreSQL's text types cannot hold U+0000 (SQL state 22021) and H2's can: a key with one (an
        // IdempotentConsumer's default key holds the message id) failed every claim on PostgreSQL only. Such a key is
        // now stored as the characters before its first NUL, a mark and the SHA-256 of the whole key, as a long key is.
        JdbcDeduplicationStore store = builder().build();
        String first = "billing/m\0-1";
        String second = "billing/m\0-2";
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(first, "a", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(second, "b", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("billing/m", "c", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim(first, "d", T0, Duration.ofSeconds(30)));
        assertTrue(store.complete(first, "a", T0));
        store.release(second, "b");

        assertTrue(store.isDone(first, T0));
        assertFalse(store.isDone(second, T0));
        assertEquals(ClaimOutcome.DONE, store.tryClaim(first, "e", T0, Duration.ofSeconds(30)));
        String stored = JdbcDeduplicationStore.storedKey(first);
        assertEquals(-1, stored.indexOf('\0'), stored);
        assertTrue(stored.startsWith("billing/m#sha256:"), stored);
    }

    @Test
    void anOwnerOrStoreNameWithANulCharacterOrAnOwnerOverItsColumnIsRefusedBeforeAnySqlOnBothDatabases() {
        // The owner (200) and the store name (100) are stored as they are: a NUL in one failed in SQL on PostgreSQL
        // only, and an owner over its column failed with "value too long" (a JdbcException) on both.
        JdbcDeduplicationStore store = builder().build();
        for (String owner : new String[] {"node\0a", "o".repeat(201)}) {
            org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> store.tryClaim("m-1", owner, T0, Duration.ofSeconds(30)));
        }
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> builder().name("bill\0ing"));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-1", "o".repeat(200), T0, Duration.ofSeconds(30)));
    }

    @Test
    void aCompletionWhoseCommitsAnswerIsLostIsReportedDoneByItsOwnerNotAsAClaimAnotherOwnerTookOver() {
        // complete repeats an attempt that failed retriably, and a commit whose outcome is unknown (the connection lost
        // after COMMIT was sent) is retriable: the repeat found the key done, by the first attempt's commit, and
        // returned false, which says the owner's claim was taken over and nothing changed, and IdempotentConsumer
        // warned that the message may have been processed twice.
        AtomicBoolean loseTheNextCommitsAnswer = new AtomicBoolean();
        JdbcSchema.of(db.database().dataSource()).migrate();
        JdbcDeduplicationStore store = JdbcDeduplicationStore.builder(
                answerLosing(db.database().dataSource(), loseTheNextCommitsAnswer)).build();
        loseTheNextCommitsAnswer.set(true);
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-1", "node-a", T0, Duration.ofSeconds(30)),
                "a claim's repeat finds its own claim and renews it");
        loseTheNextCommitsAnswer.set(true);
        assertTrue(store.complete("m-1", "node-a", T0), "the first attempt's commit happened: the owner's completion");
        assertTrue(store.isDone("m-1", T0));
        assertEquals(1, db.database().queryLong("SELECT done_count FROM ss_dedup_store WHERE store_name = 'default'"),
                "completed once");

        // a completion another owner made after taking the claim over is still not this owner's
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-2", "node-a", T0, Duration.ofSeconds(30)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-2", "node-b", T0.plusSeconds(31), Duration.ofSeconds(30)));
        assertTrue(store.complete("m-2", "node-b", T0.plusSeconds(32)));
        loseTheNextCommitsAnswer.set(true);
        assertFalse(store.complete("m-2", "node-a", T0.plusSeconds(33)));
    }

    /** {@code target}, whose next commit, once {@code armed}, commits and then fails as a lost connection would. */
    private static DataSource answerLosing(DataSource target, AtomicBoolean armed) {
        return Around.wrap(DataSource.class, target, (method, proceed) -> {
            Object handedOut = proceed.call();
            return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                Object result = call.call();
                if (m.equals("commit") && armed.getAndSet(false)) {
                    throw new SQLException("An I/O error occurred while sending to the backend (simulated: the"
                            + " connection was lost after COMMIT was sent)", "08006");
                }
                return result;
            }) : handedOut;
        });
    }

    @Test
    void aReleaseOrCompletionByAnOwnerWithANulCharacterChangesNothingOnBothDatabases() {
        // tryClaim refuses an owner with U+0000, so none holds a claim. release with one failed in SQL on PostgreSQL
        // (22021, a JdbcException) and did nothing on H2; both now do nothing, as complete does (false).
        JdbcDeduplicationStore store = builder().build();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-1", "a", T0, Duration.ofSeconds(30)));

        store.release("m-1", "a\0");
        assertFalse(store.complete("m-1", "a\0", T0));
        store.release("m-2", "a\0");
        assertFalse(store.complete("m-2", "a\0", T0));

        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim("m-1", "b", T0, Duration.ofSeconds(30)), "a's claim stands");
        assertTrue(store.complete("m-1", "a", T0));
    }


    @Test
    void anOwnerOrStoreNameWithALoneSurrogateIsRefusedBeforeAnySqlAndReleasesNothingOnBothDatabases() {
        // PostgreSQL's driver writes a lone surrogate (a UTF-16 surrogate that is not half of a pair) as '?', and H2
        // keeps it: on PostgreSQL a claim by owner "node-\uD800" was stored as owner "node-?", which a release by
        // "node-\uDC00" (or "node-?") then dropped. The owner and the store name, stored as they are, are now refused
        // before any SQL on both databases, and a release by such an owner changes nothing, as with U+0000.
        JdbcDeduplicationStore store = builder().build();
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> store.tryClaim("m-1", "node-\uD800", T0, Duration.ofSeconds(30)));
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> builder().name("bill\uDC00ing"));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("m-1", "node-?", T0, Duration.ofSeconds(30)));

        store.release("m-1", "node-\uDC00");
        assertFalse(store.complete("m-1", "node-\uDC00", T0));

        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim("m-1", "b", T0, Duration.ofSeconds(30)), "node-?'s claim stands");
        assertTrue(store.complete("m-1", "node-?", T0));
    }

    @Test
    void keysDifferingOnlyInALoneSurrogateStayApartOnBothDatabasesAndWellFormedKeysKeepTheirRows() throws Exception {
        // UTF-8 turns a lone surrogate (malformed UTF-16) into '?': the digest of a long key made such keys one row,
        // and PostgreSQL's driver sends a short one so, where H2 keeps it. Such keys are now stored under a digest
        // of their UTF-16 form, with the characters before the first lone surrogate as the prefix.
        JdbcDeduplicationStore store = builder().build();
        String[] keys = {"m-\uD800", "m-\uDC00", "m-?", "k".repeat(500) + "\uD800", "k".repeat(500) + "\uDC00",
                "k".repeat(500) + "?"};
        for (int i = 0; i < keys.length; i++) {
            assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(keys[i], "owner-" + i, T0, Duration.ofSeconds(30)), keys[i]);
        }
        String wellFormed = "k".repeat(500) + "\u00e9\uD83D\uDE00";
        assertEquals("k".repeat(428) + "#sha256:" + java.util.HexFormat.of().formatHex(java.security.MessageDigest
                        .getInstance("SHA-256").digest(wellFormed.getBytes(java.nio.charset.StandardCharsets.UTF_8))),
                JdbcDeduplicationStore.storedKey(wellFormed), "a well-formed key is stored as before");
        assertEquals("m-\uD83D\uDE00", JdbcDeduplicationStore.storedKey("m-\uD83D\uDE00"));
        assertTrue(JdbcDeduplicationStore.storedKey("m-\uD800x").startsWith("m-#sha256:"));
    }

    @Test
    void aLongKeyIsNeverCutInsideACharacter() {
        // a character outside the BMP (two chars in Java) across the cut: half of it is not a character
        String key = "k".repeat(427) + "\uD83D\uDE00" + "k".repeat(100);
        String stored = JdbcDeduplicationStore.storedKey(key);
        assertEquals("k".repeat(427) + "#sha256:", stored.substring(0, 435));
        JdbcDeduplicationStore store = builder().build();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(key, "a", T0, Duration.ofSeconds(30)));
        assertTrue(store.complete(key, "a", T0));
        assertTrue(store.isDone(key, T0));
    }

    @Test
    void purgeDeletesExpiredEvictedAndAbandonedRowsInBoundedBatches() {
        JdbcDeduplicationStore store = builder().window(Duration.ofMinutes(10)).maxEntries(3).build();
        for (int i = 0; i < 5; i++) {                       // k0, k1 fall behind the bound of 3
            store.tryClaim("k" + i, "a", T0, Duration.ofSeconds(30));
            store.complete("k" + i, "a", T0.plusSeconds(i));
        }
        store.tryClaim("abandoned", "crashed", T0, Duration.ofSeconds(30));
        Instant now = T0.plusSeconds(60);

        assertEquals(2, store.purge(now, 2));
        assertEquals(1, store.purge(now, 2));               // the abandoned claim
        assertEquals(0, store.purge(now, 2));
        assertEquals(3, db.database().queryLong("SELECT COUNT(*) FROM ss_dedup"));
        assertTrue(store.isDone("k4", now));

        assertEquals(3, store.purge(T0.plus(Duration.ofMinutes(11)), 10)); // the rest left the window
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_dedup"));
    }

    @Test
    void purgeCountsEveryEvictedKey() {
        Map<String, Integer> evictions = new ConcurrentHashMap<>();
        MetricsRecorder metrics = new MetricsRecorder() {
            @Override
            public void increment(String name, Map<String, String> tags) {
                evictions.merge(name + "/" + tags.get("reason"), 1, Integer::sum);
            }
        };
        JdbcDeduplicationStore store = builder().window(Duration.ofMinutes(10)).maxEntries(3).metrics(metrics).build();
        for (int i = 0; i < 5; i++) {                       // k0, k1 fall behind the bound of 3
            store.tryClaim("k" + i, "a", T0, Duration.ofSeconds(30));
            store.complete("k" + i, "a", T0.plusSeconds(i));
        }
        assertEquals(2, store.purge(T0.plusSeconds(60), 100));
        assertEquals(3, store.purge(T0.plus(Duration.ofMinutes(11)), 100));
        assertEquals(Map.of(JdbcDeduplicationStore.EVICTIONS_METRIC + "/capacity", 2,
                JdbcDeduplicationStore.EVICTIONS_METRIC + "/expired", 3), evictions, "one count per key forgotten");
    }
}
