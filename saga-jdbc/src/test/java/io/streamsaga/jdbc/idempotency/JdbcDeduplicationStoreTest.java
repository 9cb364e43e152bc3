package io.streamsaga.jdbc.idempotency;

import io.streamsaga.ConfigurationException;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.idempotency.spi.DeduplicationStoreContractTest;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.metrics.MetricsRecorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
    void aKeyLongerThanItsColumnIsRefusedRatherThanCutToAPrefixAnotherKeyShares() {
        // Both databases cut a value cast to VARCHAR(500) to its first 500 characters: the row was stored under
        // the prefix, so a long key never became done (complete found no row) and a second long key sharing
        // the prefix failed with a StaleVersionException after its retries.
        JdbcDeduplicationStore store = builder().build();
        String longest = "k".repeat(500);
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim(longest, "a", T0, Duration.ofSeconds(30)));
        assertTrue(store.complete(longest, "a", T0));
        assertTrue(store.isDone(longest, T0));
        assertThrows(ConfigurationException.class, () -> store.tryClaim(longest + "-2", "a", T0, Duration.ofSeconds(30)));
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
