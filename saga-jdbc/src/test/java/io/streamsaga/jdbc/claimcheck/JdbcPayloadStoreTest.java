package io.streamsaga.jdbc.claimcheck;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.claimcheck.spi.PayloadStoreContractTest;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Instant;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The payload store contract, plus payloads past Kafka's 1 MiB limit; subclasses pick the engine. */
abstract class JdbcPayloadStoreTest extends PayloadStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Override
    protected PayloadStore createStore() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcPayloadStore.create(db.database().dataSource());
    }

    @Test
    void payloadsLargerThanTheBrokersMessageLimitAreKeptWhole() throws Exception {
        byte[] content = new byte[3 * 1024 * 1024];
        new Random(7).nextBytes(content);
        String id = idOf(content);
        PayloadStore store = createStore();
        store.put(id, content, "m1", Instant.parse("2026-01-01T00:00:00Z"));
        assertArrayEquals(content, JdbcPayloadStore.create(db.database().dataSource()).get(id).orElseThrow());
    }

    @Test
    void aHolderWithANulCharacterIsRefusedBeforeAnySqlOnBothDatabases() throws Exception {
        // PostgreSQL's text types cannot hold U+0000 (SQL state 22021) and H2's can: a holder (a message id) with one
        // was stored on H2 and failed in SQL on PostgreSQL. Both now refuse it before any SQL.
        byte[] content = "p".getBytes();
        String id = idOf(content);
        PayloadStore store = createStore();
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> store.put(id, content, "m\0-1", Instant.parse("2026-01-01T00:00:00Z")));
        org.junit.jupiter.api.Assertions.assertFalse(store.release(id, "m\0-1"), "nothing can hold it");
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_payload"));
    }


    @Test
    void holdersDifferingOnlyInALoneSurrogateAreRefusedBeforeAnySqlOnBothDatabasesNotMadeOneOnPostgres() throws Exception {
        // PostgreSQL's driver writes a lone surrogate (a UTF-16 surrogate that is not half of a pair) as '?', and H2
        // keeps it: on PostgreSQL a put by holder "m-\uD800" was stored as "m-?", and a release by "m-\uDC00", which
        // never held the payload, released it (and deleted the payload with its last holder). Both now refuse such a
        // holder before any SQL, and a release by one releases nothing.
        byte[] content = "p".getBytes();
        String id = idOf(content);
        PayloadStore store = createStore();
        store.put(id, content, "m-?", Instant.parse("2026-01-01T00:00:00Z"));
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> store.put(id, content, "m-\uD800", Instant.parse("2026-01-01T00:00:00Z")));
        org.junit.jupiter.api.Assertions.assertFalse(store.release(id, "m-\uDC00"), "nothing can hold it");
        assertEquals(1, db.database().queryLong("SELECT COUNT(*) FROM ss_payload_holder"));
        assertArrayEquals(content, store.get(id).orElseThrow(), "m-? still holds it");
    }

    @Test
    void expiryDeletesInBoundedBatches() throws Exception {
        JdbcPayloadStore store = (JdbcPayloadStore) createStore();
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        for (int i = 0; i < 5; i++) {
            byte[] content = ("p" + i).getBytes();
            store.put(idOf(content), content, "m" + i, t0.plusSeconds(i));
        }
        assertEquals(2, store.deleteStoredBefore(t0.plusSeconds(60), 2));
        assertEquals(3, store.deleteStoredBefore(t0.plusSeconds(60)));
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_payload_holder"));
    }
}
