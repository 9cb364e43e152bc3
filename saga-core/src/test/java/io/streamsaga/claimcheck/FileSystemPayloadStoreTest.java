package io.streamsaga.claimcheck;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.claimcheck.spi.PayloadStoreContractTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
            assertEquals(0, left.count());
        }
    }

    @Test
    void aSecondInstanceOverTheSameDirectorySeesThePayloads() throws IOException, Exception {
        byte[] content = "shared".getBytes(StandardCharsets.UTF_8);
        String id = idOf(content);
        new FileSystemPayloadStore(dir.resolve("shared")).put(id, content, "m1", Instant.parse("2026-01-01T00:00:00Z"));
        assertEquals("shared", new String(new FileSystemPayloadStore(dir.resolve("shared")).get(id).orElseThrow(),
                StandardCharsets.UTF_8));
    }
}
