package io.streamsaga.samples.patterns;

import io.streamsaga.bus.EventBus;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.FileSystemPayloadStore;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Claim check: a 1.5 MB order (over Kafka's 1 MiB default message limit) is published; the interceptor puts the
 * payload in a file-system payload store and sends only a reference with size, SHA-256 and content type;
 * the billing and shipping groups receive the full order; once both have acknowledged, the payload file is
 * deleted.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.patterns.ClaimCheckSample</pre>
 */
public final class ClaimCheckSample {
    /** An order too large for one message. */
    public record LargeOrder(String orderId, List<String> lines) {
    }

    /** What happened. */
    public record Result(long wireBytes, long payloadBytes, List<String> receivedBy, long filesBefore, long filesAfter) {
    }

    private ClaimCheckSample() {
    }

    public static void main(String[] args) throws IOException {
        Path dir = Files.createTempDirectory("streamsaga-claim-check");
        run(dir, System.out);
        removeStore(dir);
    }

    /**
     * Deletes the store's directory. Every payload was deleted by then, but the store keeps its lock file
     * ({@code .lock}) in the directory, so the directory is not empty.
     */
    private static void removeStore(Path dir) throws IOException {
        try (Stream<Path> left = Files.walk(dir)) {
            for (Path path : left.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }

    public static Result run(Path storeDir, PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
                .serializePayloads(true).build(); // bytes on the wire, as on Kafka
        FileSystemPayloadStore store = new FileSystemPayloadStore(storeDir);
        try (ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).build();
             EventBus bus = EventBus.builder(transport)
                     .types(TypeRegistry.builder().register("large-order-created", 1, LargeOrder.class).build())
                     .scheduler(scheduler)
                     .interceptor(claimCheck) // the one line that opts in
                     .build()) {
            List<String> receivedBy = new ArrayList<>();
            for (String group : List.of("billing", "shipping")) {
                bus.subscribe(group, "large-order-created", LargeOrder.class, (order, ctx) -> {
                    receivedBy.add(ctx.group());
                    out.printf("%s: received order %s with %d lines%n", ctx.group(), order.orderId(), order.lines().size());
                });
            }
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < 40_000; i++) {
                lines.add("line %05d: 1 x widget, gift-wrapped".formatted(i));
            }
            bus.publish("large-order-created", "o-1", new LargeOrder("o-1", lines)).toCompletableFuture().join();

            Message wire = transport.messages("large-order-created").get(0);
            PayloadReference reference = PayloadReference.fromHeaders(wire.headers()).orElseThrow();
            long wireBytes = ((byte[]) wire.payload()).length;
            long filesBefore = countFiles(storeDir);
            out.printf("on the wire: %d bytes; in the store: %d bytes as %s... (%s), %d payload file(s)%n", wireBytes,
                    reference.size(), reference.id().substring(0, 12), reference.contentType(), filesBefore);

            transport.drainAll();
            long filesAfter = countFiles(storeDir);
            out.printf("after billing and shipping acknowledged: %d payload file(s) left in %s%n", filesAfter, storeDir);
            return new Result(wireBytes, reference.size(), receivedBy, filesBefore, filesAfter);
        } finally {
            transport.close();
        }
    }

    /** The stored payloads (the store also keeps its directory's lock file, {@code .lock}). */
    private static long countFiles(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).filter(f -> f.getFileName().toString().endsWith(".payload")).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
