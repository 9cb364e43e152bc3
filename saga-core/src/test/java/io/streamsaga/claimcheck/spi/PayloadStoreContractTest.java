package io.streamsaga.claimcheck.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.spi.StoredKeys;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What every {@link PayloadStore} must do. Subclass it and create a fresh, empty store per call. */
public abstract class PayloadStoreContractTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    protected abstract PayloadStore createStore();

    protected static String idOf(byte[] content) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void storedPayloadIsReadBackByteForByte() throws Exception {
        PayloadStore store = createStore();
        byte[] content = new byte[300_000];
        for (int i = 0; i < content.length; i++) {
            content[i] = (byte) (i * 31);
        }
        String id = idOf(content);
        store.put(id, content, "m1", T0);
        assertArrayEquals(content, store.get(id).orElseThrow());
    }

    @Test
    void unknownIdIsEmpty() throws Exception {
        assertTrue(createStore().get(idOf(bytes("nothing"))).isEmpty());
    }

    @Test
    void identicalPayloadIsStoredOnceAndDeletedWithItsLastHolder() throws Exception {
        PayloadStore store = createStore();
        byte[] content = bytes("{\"big\":true}");
        String id = idOf(content);
        store.put(id, content, "m1", T0);
        store.put(id, content, "m2", T0);
        assertFalse(store.release(id, "m1"));
        assertTrue(store.get(id).isPresent(), "m2 still holds it");
        assertTrue(store.release(id, "m2"));
        assertTrue(store.get(id).isEmpty());
        assertFalse(store.release(id, "m2"));
    }

    @Test
    void releaseByAnUnknownHolderKeepsThePayload() throws Exception {
        PayloadStore store = createStore();
        byte[] content = bytes("payload");
        String id = idOf(content);
        store.put(id, content, "m1", T0);
        store.put(id, content, "m1", T0); // a publish retry: still one hold
        assertFalse(store.release(id, "stranger"));
        assertTrue(store.get(id).isPresent());
        assertTrue(store.release(id, "m1"));
    }

    @Test
    void expiryDeletesOldPayloadsWhateverTheirHolders() throws Exception {
        PayloadStore store = createStore();
        byte[] old = bytes("old");
        byte[] recent = bytes("recent");
        byte[] renewed = bytes("renewed");
        store.put(idOf(old), old, "m1", T0);
        store.put(idOf(renewed), renewed, "m2", T0);
        store.put(idOf(recent), recent, "m3", T0.plusSeconds(100));
        store.put(idOf(renewed), renewed, "m4", T0.plusSeconds(100)); // used again: its time is refreshed
        assertEquals(1, store.deleteStoredBefore(T0.plusSeconds(50)));
        assertTrue(store.get(idOf(old)).isEmpty());
        assertTrue(store.get(idOf(recent)).isPresent());
        assertTrue(store.get(idOf(renewed)).isPresent());
        assertEquals(2, store.deleteStoredBefore(T0.plusSeconds(101)));
    }

    @Test
    void aBoundedExpiryDeletesAtMostItsBoundPerCallAndReturnsWhatItDeleted() throws Exception {
        PayloadStore store = createStore();
        for (int i = 0; i < 5; i++) {
            byte[] old = bytes("old-" + i);
            store.put(idOf(old), old, "m" + i, T0);
        }
        byte[] recent = bytes("recent");
        store.put(idOf(recent), recent, "r", T0.plusSeconds(100));
        Instant cutoff = T0.plusSeconds(50);
        assertEquals(2, store.deleteStoredBefore(cutoff, 2));
        assertEquals(2, store.deleteStoredBefore(cutoff, 2));
        assertEquals(1, store.deleteStoredBefore(cutoff, 2), "the last old one: fewer than the bound ends a sweep's run");
        assertEquals(0, store.deleteStoredBefore(cutoff, 2));
        for (int i = 0; i < 5; i++) {
            assertTrue(store.get(idOf(bytes("old-" + i))).isEmpty());
        }
        assertTrue(store.get(idOf(recent)).isPresent());
        assertThrows(ConfigurationException.class, () -> store.deleteStoredBefore(cutoff, 0));
        assertThrows(ConfigurationException.class, () -> store.deleteStoredBefore(cutoff, -1));
        assertTrue(store.get(idOf(recent)).isPresent());
    }

    @Test
    void concurrentHoldersOfOnePayloadKeepItUntilTheLastReleases() throws Exception {
        PayloadStore store = createStore();
        byte[] content = bytes("{\"shared\":true}");
        String id = idOf(content);
        int holders = 8;
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
            java.util.List<java.util.concurrent.Future<?>> puts = new java.util.ArrayList<>();
            for (int i = 0; i < holders; i++) {
                String holder = "m" + i;
                puts.add(pool.submit(() -> {
                    start.await();
                    store.put(id, content, holder, T0);
                    return null;
                }));
            }
            start.countDown();
            for (java.util.concurrent.Future<?> put : puts) {
                put.get(10, java.util.concurrent.TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        for (int i = 0; i < holders - 1; i++) {
            assertFalse(store.release(id, "m" + i));
        }
        assertArrayEquals(content, store.get(id).orElseThrow());
        assertTrue(store.release(id, "m" + (holders - 1)));
        assertTrue(store.get(id).isEmpty());
    }

    @Test
    void idsThatCouldEscapeTheStoreAreRefused() {
        PayloadStore store = createStore();
        assertThrows(ConfigurationException.class, () -> store.get("../../etc/passwd"));
        assertThrows(ConfigurationException.class, () -> store.put("a/b", bytes("x"), "m1", T0));
        assertThrows(ConfigurationException.class, () -> store.release("", "m1"));
    }

    /**
     * A holder holding U+0000 or a lone surrogate is refused with a ConfigurationException, nothing stored, as a
     * durable store must ({@code StoredKeys}); releasing by one releases nothing (not the holder that UTF-8 would
     * make of it).
     */
    @Test
    void aHolderHoldingANulOrALoneSurrogateIsRefusedWithNothingStored() throws Exception {
        PayloadStore store = createStore();
        byte[] content = bytes("payload");
        String id = idOf(content);
        for (String bad : new String[]{"h\0", "h\uD800", "h\uDC00x"}) {
            assertThrows(ConfigurationException.class, () -> store.put(id, content, bad, T0));
            assertTrue(store.get(id).isEmpty(), "a refused put stores nothing");
        }
        store.put(id, content, "h?", T0); // what UTF-8 makes of "h\uD800": another holder
        assertFalse(store.release(id, "h\0"));
        assertFalse(store.release(id, "h\uD800"), "a holder that was never stored holds nothing");
        assertArrayEquals(content, store.get(id).orElseThrow());
    }

    /**
     * Every store keeps a holder up to {@link StoredKeys#MAX_HOLDER_LENGTH} (the JDBC column's width) and refuses a
     * longer one with nothing stored, alike: an in-memory store that took one would let a test pass where production
     * fails.
     */
    @Test
    void aHolderUpToItsStoredLengthIsKeptAndALongerOneIsRefusedWithNothingStored() throws Exception {
        PayloadStore store = createStore();
        byte[] content = bytes("payload");
        String id = idOf(content);
        String holder = "h".repeat(StoredKeys.MAX_HOLDER_LENGTH);
        assertThrows(ConfigurationException.class, () -> store.put(id, content, holder + "h", T0));
        assertTrue(store.get(id).isEmpty(), "a refused put stores nothing");
        store.put(id, content, holder, T0);
        assertArrayEquals(content, store.get(id).orElseThrow());
        assertTrue(store.release(id, holder));
    }
}
