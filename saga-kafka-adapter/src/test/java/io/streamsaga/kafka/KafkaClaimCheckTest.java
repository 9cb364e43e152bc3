package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.FileSystemPayloadStore;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.codec.TypeRegistry;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Claim check on Kafka: an event over the 1 MiB message limit travels as a reference and arrives whole. */
class KafkaClaimCheckTest {
    record LargeOrder(String orderId, List<String> lines) {
    }

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static KafkaTransport transport;

    @BeforeAll
    static void start() {
        transport = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
    }

    @AfterAll
    static void stop() {
        transport.close();
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder().register("large-order-created", 1, LargeOrder.class).build();
    }

    private static LargeOrder largeOrder() {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40_000; i++) {
            lines.add("line %05d: 1 x widget, gift-wrapped".formatted(i));
        }
        return new LargeOrder("o-1", lines); // about 1.5 MB of JSON
    }

    @Test
    void eventOverTheMessageLimitIsRejectedByKafkaWithoutClaimCheck() {
        String topic = SharedKafkaBroker.unique("large-order-created");
        try (EventBus bus = EventBus.builder(transport).types(types()).build()) {
            CompletionException error = assertThrows(CompletionException.class,
                    () -> bus.publish(topic, "o-1", largeOrder()).toCompletableFuture().join());
            assertInstanceOf(RecordTooLargeException.class, error.getCause().getCause());
        }
    }

    @Test
    void eventOverTheMessageLimitTravelsAsAReferenceAndEveryGroupReceivesItWhole(@TempDir Path storeDir) {
        String topic = SharedKafkaBroker.unique("large-order-created");
        List<String> receivedBy = new CopyOnWriteArrayList<>();
        try (ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new FileSystemPayloadStore(storeDir), transport).build();
             EventBus bus = EventBus.builder(transport).types(types()).interceptor(claimCheck).build()) {
            for (String group : List.of(SharedKafkaBroker.unique("billing"), SharedKafkaBroker.unique("shipping"))) {
                bus.subscribe(group, topic, LargeOrder.class, (order, ctx) -> {
                    assertEquals(40_000, order.lines().size());
                    receivedBy.add(ctx.group());
                });
            }
            LargeOrder order = largeOrder();
            bus.publish(topic, "o-1", order).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> receivedBy.size() == 2);

            ConsumerRecord<String, byte[]> wire = readOne(topic);
            assertTrue(wire.value().length < 64 * 1024, "the record carries a reference, not the payload: " + wire.value().length);
            Map<String, String> headers = new HashMap<>();
            for (Header header : wire.headers()) {
                headers.put(header.key(), new String(header.value(), StandardCharsets.UTF_8));
            }
            PayloadReference reference = PayloadReference.fromHeaders(headers).orElseThrow();
            assertTrue(reference.size() > 1024 * 1024, "the stored payload is the whole event: " + reference.size());
        }
    }

    @Test
    void largestEventLeftInlineByDefaultFitsKafkasMessageLimit(@TempDir Path storeDir) {
        // The largest event the interceptor leaves inline: Kafka must still take it with its headers and key.
        String prefix = "{\"orderId\":\"o-1\",\"lines\":[\"";
        String suffix = "\"]}";
        String line = "x".repeat(ClaimCheckInterceptor.DEFAULT_THRESHOLD - prefix.length() - suffix.length());
        LargeOrder order = new LargeOrder("o-1", List.of(line));
        String topic = SharedKafkaBroker.unique("large-order-created");
        try (ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new FileSystemPayloadStore(storeDir), transport).build();
             EventBus bus = EventBus.builder(transport).types(types()).interceptor(claimCheck).build()) {
            assertEquals(ClaimCheckInterceptor.DEFAULT_THRESHOLD, bus.codec().encode(order).length);
            bus.publish(topic, "o-1", order).toCompletableFuture().join();
        }
    }

    private static ConsumerRecord<String, byte[]> readOne(String topic) {
        Map<String, Object> config = Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                ConsumerConfig.GROUP_ID_CONFIG, SharedKafkaBroker.unique("plain"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config, new StringDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, byte[]>> records = new ArrayList<>();
            await().atMost(WAIT).until(() -> {
                consumer.poll(Duration.ofMillis(100)).forEach(records::add);
                return !records.isEmpty();
            });
            return records.get(0);
        }
    }
}
