package io.streamsaga.claimcheck;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.claimcheck.spi.PayloadStoreContractTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.stream.Stream;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FileSystemPayloadStoreTest extends PayloadStoreContractTest {
    @TempDir
    Path dir;
    private int stores;

    @Override
    protected PayloadStore createStore() {
        return new FileSystemPayloadStore(dir.resolve("store-" + stores++));
    }

    @Test
    void deletedPayloadLeavesNoFilesBehind() throws Exception {
        FileSystemPayloadStore store = new FileSystemPayloadStore(dir.resolve("clean"));
        byte[] content = "{\"x\":1}".getBytes(StandardCharsets.UTF_8);
        String id = idOf(content);
        store.put(id, content, "m1", Instant.parse("2026-01-01T00:00:00Z"));
        store.release(id, "m1");
        try (Stream<Path> left = Files.list(store.root())) {
            assertEquals(0, left.filter(f -> !f.getFileName().toString().equals(".lock")).count(),
                    "only the directory's lock file is left");
        }
    }

    @Test
    void aBoundedExpiryCountsNoTemporaryFileAndDeletesThemOnlyInACallThatDeletedFewerPayloadsThanItsBound()
            throws Exception {
        FileSystemPayloadStore store = new FileSystemPayloadStore(dir.resolve("bounded"));
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        for (String text : new String[]{"a", "b"}) {
            byte[] content = text.getBytes(StandardCharsets.UTF_8);
            store.put(idOf(content), content, "m1", t0);
        }
        Path stale = Files.write(store.root().resolve("crashed4711.tmp"), new byte[]{1});
        Files.setLastModifiedTime(stale, FileTime.from(t0));
        Instant cutoff = t0.plus(Duration.ofDays(1));

        assertEquals(2, store.deleteStoredBefore(cutoff, 2), "a full batch: the sweep's run goes on");
        assertTrue(Files.exists(stale), "left to the run's last batch");
        assertEquals(0, store.deleteStoredBefore(cutoff, 2), "the temporary file is not counted: the run ends");
        assertFalse(Files.exists(stale), "deleted by the run's last batch");
    }

    @Test
    void theExpirySweepDeletesATemporaryFileACrashLeftOnceItIsOlderThanTheCutoff() throws Exception {
        FileSystemPayloadStore store = new FileSystemPayloadStore(dir.resolve("crashed"));
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        byte[] content = "kept".getBytes(StandardCharsets.UTF_8);
        String id = idOf(content);
        store.put(id, content, "m1", t0.plus(Duration.ofDays(2)));
        // what put leaves when the process dies between writing the temporary file and moving it into place
        Path stale = Files.write(store.root().resolve(id + "4711" + ".tmp"), content);
        Files.setLastModifiedTime(stale, FileTime.from(t0));
        Path recent = Files.write(store.root().resolve(id + "4712" + ".tmp"), content);
        Files.setLastModifiedTime(recent, FileTime.from(t0.plus(Duration.ofDays(2))));

        assertEquals(0, store.deleteStoredBefore(t0.plus(Duration.ofDays(1))), "temporary files are not payloads");

        assertFalse(Files.exists(stale), "the temporary file older than the cutoff is deleted");
        assertTrue(Files.exists(recent), "a temporary file newer than the cutoff is left alone");
        assertEquals("kept", new String(store.get(id).orElseThrow(), StandardCharsets.UTF_8));
    }

    @Test
    void aSecondInstanceOverTheSameDirectorySeesThePayloads() throws IOException, Exception {
        byte[] content = "shared".getBytes(StandardCharsets.UTF_8);
        String id = idOf(content);
        new FileSystemPayloadStore(dir.resolve("shared")).put(id, content, "m1", Instant.parse("2026-01-01T00:00:00Z"));
        assertEquals("shared", new String(new FileSystemPayloadStore(dir.resolve("shared")).get(id).orElseThrow(),
                StandardCharsets.UTF_8));
    }

    @Test
    void anInstanceWaitsForTheDirectoryLockAnotherInstanceOverTheSameDirectoryHolds() throws Exception {
        // Two instances over one directory each serialised only their own calls: a release of the last hold
        // on one, between finding no holder left and deleting the payload, deleted the payload (and the new
        // holder) a put on the other had just stored again. Both now take the directory's lock file; here
        // the test holds it, standing for the other instance in the middle of its release.
        Path shared = dir.resolve("locked");
        FileSystemPayloadStore store = new FileSystemPayloadStore(shared);
        byte[] content = "held".getBytes(StandardCharsets.UTF_8);
        String id = idOf(content);
        Thread put;
        try (FileChannel other = FileChannel.open(shared.resolve(".lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE); FileLock held = other.lock()) {
            put = new Thread(() -> store.put(id, content, "m2", Instant.parse("2026-01-01T00:00:00Z")));
            put.start();
            // Parked between its tries of the lock, or (on the old code) done without waiting.
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    put.getState() == Thread.State.TIMED_WAITING || put.getState() == Thread.State.TERMINATED);
            assertTrue(put.isAlive(), "the put waits for the lock"); // it cannot finish while the lock is held
            assertFalse(Files.exists(shared.resolve(id + ".payload")), "nothing is stored while another instance holds the lock");
        }
        put.join(Duration.ofSeconds(30).toMillis());
        assertFalse(put.isAlive());
        assertEquals("held", new String(store.get(id).orElseThrow(), StandardCharsets.UTF_8));
        assertTrue(new FileSystemPayloadStore(shared).release(id, "m2"), "the other instance sees the hold");
        assertTrue(store.get(id).isEmpty());
    }
}
