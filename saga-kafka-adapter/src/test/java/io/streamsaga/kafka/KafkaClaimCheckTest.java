package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.FileSystemPayloadStore;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.bus.Subscription;
import io.streamsaga.message.Message;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
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

import javax.management.MBeanServer;
import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

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

    @Test
    void acknowledgementsOfClaimCheckedRecordsShareOneListingOfTheBrokersConsumerGroups(@TempDir Path storeDir)
            throws Exception {
        // The claim check asks transport.consumerGroups(topic) on every acknowledgement; each answer listed
        // every group of the broker and their offsets: 2 groups x 10 records were 20 listings.
        String topic = SharedKafkaBroker.unique("large-order-created");
        int records = 10;
        List<String> receivedBy = new CopyOnWriteArrayList<>();
        try (KafkaTransport listing = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .consumerGroupsMaxAge(Duration.ofHours(1)).build();
             ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new FileSystemPayloadStore(storeDir), listing)
                     .threshold(64).build();
             EventBus bus = EventBus.builder(listing).types(types()).interceptor(claimCheck).build()) {
            for (String group : List.of(SharedKafkaBroker.unique("billing"), SharedKafkaBroker.unique("shipping"))) {
                bus.subscribe(group, topic, LargeOrder.class, (order, ctx) -> receivedBy.add(ctx.group()));
            }
            long before = brokerRequests("ListGroups");
            for (int i = 0; i < records; i++) {
                bus.publish(topic, "o-" + i, new LargeOrder("o-" + i, List.of("line of order " + i, "x".repeat(100))))
                        .toCompletableFuture().join();
            }
            await().atMost(WAIT).until(() -> receivedBy.size() == 2 * records && claimCheck.pendingMessages() == 0
                    && storedPayloads(storeDir) == 0);
            await().atMost(WAIT).until(() -> brokerRequests("ListGroups") > before); // the broker counts on its own thread
            assertEquals(1, brokerRequests("ListGroups") - before, "listings of the broker's consumer groups");
        }
    }

    @Test
    void aGroupSubscribedThroughTheTransportAfterTheListingMustBeDoneBeforeThePayloadIsReleased(@TempDir Path storeDir)
            throws Exception {
        // The broker's groups are listed once an hour here; a group subscribed through this transport since
        // the listing must be waited for all the same, or it would find the payload released and dead-letter.
        String topic = SharedKafkaBroker.unique("large-order-created");
        String billing = SharedKafkaBroker.unique("billing");
        String shipping = SharedKafkaBroker.unique("shipping");
        List<String> acknowledgedBy = new CopyOnWriteArrayList<>();
        MessageInterceptor acknowledgements = new MessageInterceptor() {
            @Override
            public void onAcknowledged(Message message, String group) {
                acknowledgedBy.add(group + "/" + message.key()); // after the claim check's, which comes first
            }
        };
        CountDownLatch shippingMayFinish = new CountDownLatch(1);
        try (KafkaTransport listing = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .consumerGroupsMaxAge(Duration.ofHours(1)).build();
             ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new FileSystemPayloadStore(storeDir), listing)
                     .threshold(64).build();
             EventBus bus = EventBus.builder(listing).types(types()).interceptor(claimCheck).interceptor(acknowledgements)
                     .build()) {
            bus.subscribe(billing, topic, LargeOrder.class, (order, ctx) -> { });
            bus.publish(topic, "o-1", new LargeOrder("o-1", List.of("x".repeat(100)))).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> acknowledgedBy.contains(billing + "/o-1"));
            assertEquals(0, storedPayloads(storeDir), "billing was the only group: the payload is released");

            bus.subscribe(shipping, topic, LargeOrder.class, (order, ctx) -> shippingMayFinish.await());
            bus.publish(topic, "o-2", new LargeOrder("o-2", List.of("y".repeat(100)))).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> acknowledgedBy.contains(billing + "/o-2"));
            assertEquals(1, storedPayloads(storeDir), "shipping has not acknowledged o-2 yet");
            assertEquals(1, claimCheck.pendingMessages());

            shippingMayFinish.countDown();
            await().atMost(WAIT).until(() -> acknowledgedBy.contains(shipping + "/o-2"));
            assertEquals(0, storedPayloads(storeDir), "every group is done with o-2");
        }
    }

    @Test
    void aGroupWhoseSubscriptionClosedIsWaitedForWhileTheBrokerKeepsItsOffsetsAndNoLongerOnceItIsDeleted(
            @TempDir Path storeDir) throws Exception {
        // consumerGroups(topic) kept every group once subscribed through the transport, closed or not: a group
        // closed and deleted from the broker held every later payload of the topic until the expiry.
        String topic = SharedKafkaBroker.unique("large-order-created");
        String retired = SharedKafkaBroker.unique("retired");
        String billing = SharedKafkaBroker.unique("billing");
        List<String> acknowledgedBy = new CopyOnWriteArrayList<>();
        MessageInterceptor acknowledgements = new MessageInterceptor() {
            @Override
            public void onAcknowledged(Message message, String group) {
                acknowledgedBy.add(group + "/" + message.key()); // after the claim check's, which comes first
            }
        };
        try (KafkaTransport listing = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .consumerGroupsMaxAge(Duration.ZERO).build();
             ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new FileSystemPayloadStore(storeDir), listing)
                     .threshold(64).build();
             EventBus bus = EventBus.builder(listing).types(types()).interceptor(claimCheck).interceptor(acknowledgements)
                     .build();
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers()))) {
            Subscription retiring = bus.subscribe(retired, topic, LargeOrder.class, (order, ctx) -> { });
            bus.subscribe(billing, topic, LargeOrder.class, (order, ctx) -> { });
            bus.publish(topic, "o-1", new LargeOrder("o-1", List.of("x".repeat(100)))).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> acknowledgedBy.containsAll(List.of(retired + "/o-1", billing + "/o-1")));
            assertEquals(0, storedPayloads(storeDir), "both groups are done with o-1");

            retiring.close();
            bus.publish(topic, "o-2", new LargeOrder("o-2", List.of("y".repeat(100)))).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> acknowledgedBy.contains(billing + "/o-2"));
            assertEquals(1, storedPayloads(storeDir),
                    "the broker keeps the closed group's offsets, where it resumes: o-2 waits for it");

            await().atMost(WAIT).ignoreExceptions() // the group's leave may still be under way
                    .until(() -> admin.deleteConsumerGroups(List.of(retired)).all().get() == null);
            bus.publish(topic, "o-3", new LargeOrder("o-3", List.of("z".repeat(100)))).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> acknowledgedBy.contains(billing + "/o-3"));
            assertEquals(1, storedPayloads(storeDir), "the deleted group is gone: o-3 is released, o-2 waits for the expiry");
            assertEquals(Set.of(billing), listing.consumerGroups(topic));
        }
    }

    /** How many payloads the file-system store holds (one {@code .payload} file each). */
    private static long storedPayloads(Path storeDir) throws Exception {
        try (Stream<Path> files = Files.list(storeDir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".payload")).count();
        }
    }

    /** The broker's count of requests of one API (its {@code RequestsPerSec} meter, over every API version). */
    private static long brokerRequests(String api) throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        long total = 0;
        for (ObjectName name : server.queryNames(
                new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,request=" + api + ",*"), null)) {
            total += ((Number) server.getAttribute(name, "Count")).longValue();
        }
        return total;
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
