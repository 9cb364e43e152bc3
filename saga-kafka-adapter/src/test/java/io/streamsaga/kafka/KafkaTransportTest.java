package io.streamsaga.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.RecordHandler;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerInterceptor;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KafkaTransportTest {
    record OrderCreated(String orderId, long amount) {
    }

    record PaymentProcessed(String orderId) {
    }

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static String bootstrap;
    private static KafkaTransport transport;

    @BeforeAll
    static void startTransport() {
        bootstrap = SharedKafkaBroker.bootstrapServers();
        transport = KafkaTransport.builder().bootstrapServers(bootstrap).redeliveryBackoff(Duration.ofMillis(200)).build();
    }

    @AfterAll
    static void closeTransport() {
        transport.close();
    }

    private static EventBus bus() {
        return EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build();
    }

    @Test
    void sendCompletesWithTheRecordsPositionAndARejectedSendFailsWithAPublishExceptionNamingTheTopic() throws Exception {
        String topic = SharedKafkaBroker.unique("positions");
        Message small = Message.builder(topic).key("k").type("t").payload("{}".getBytes(StandardCharsets.UTF_8)).build();
        RecordPosition first = transport.send(small).toCompletableFuture().get(30, TimeUnit.SECONDS);
        RecordPosition second = transport.send(small.toBuilder().id(Message.newId()).build())
                .toCompletableFuture().get(30, TimeUnit.SECONDS);
        assertEquals(topic, first.topic());
        assertEquals(first.partition(), second.partition()); // one key, one partition
        assertEquals(first.offset() + 1, second.offset());

        // over the producer's max.request.size (1 MiB by default): Kafka rejects it through the callback
        Message tooLarge = small.toBuilder().id(Message.newId()).payload(new byte[2 * 1024 * 1024]).build();
        ExecutionException failure = assertThrows(ExecutionException.class,
                () -> transport.send(tooLarge).toCompletableFuture().get(30, TimeUnit.SECONDS));
        PublishException error = assertInstanceOf(PublishException.class, failure.getCause());
        assertTrue(error.getMessage().contains(topic), error.getMessage());
        assertInstanceOf(RecordTooLargeException.class, error.getCause());
    }

    @Test
    void aMessageWhoseTimestampKafkaCannotCarryFailsItsSendWithAPublishExceptionNamingTheTopic() throws Exception {
        // A record's timestamp is epoch milliseconds, never negative: Kafka's ProducerRecord refuses an earlier
        // one (and toEpochMilli one beyond a long), and that IllegalArgumentException (or ArithmeticException) went
        // out of send as it was, where docs/kafka.md promises a PublishException naming the topic.
        String topic = SharedKafkaBroker.unique("history");
        for (java.time.Instant timestamp : new java.time.Instant[] {java.time.Instant.EPOCH.minusSeconds(1), java.time.Instant.MAX}) {
            Message message = Message.builder(topic).key("k").type("t").payload(new byte[0]).timestamp(timestamp).build();
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> transport.send(message).toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS));
            PublishException error = assertInstanceOf(PublishException.class, failure.getCause(), timestamp.toString());
            assertTrue(error.getMessage().contains(topic), error.getMessage());
            assertFalse(error.isRetriable(), error.toString());

            CompletableFuture<Throwable> reported = new CompletableFuture<>();
            transport.send(message, (position, sendError) -> reported.complete(sendError));
            assertInstanceOf(PublishException.class, reported.get(WAIT.toSeconds(), TimeUnit.SECONDS), timestamp.toString());
        }
    }

    @Test
    void aSendTheProducerCannotTakeWithinMaxBlockMsFailsItsStageWithARetriablePublishException() throws Exception {
        // docs/kafka.md: send blocks its caller while the producer has no metadata for the topic (a broker down)
        // or a full buffer, up to the producer's max.block.ms, and then fails as a retriable PublishException.
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }
        try (KafkaTransport down = KafkaTransport.builder().bootstrapServers("127.0.0.1:" + closedPort)
                .producerProperty(ProducerConfig.MAX_BLOCK_MS_CONFIG, 200)
                .closeTimeout(Duration.ofSeconds(1)).build()) {
            Message message = Message.builder("orders").key("k").type("t").payload(new byte[0]).build();
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> down.send(message).toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS));
            PublishException error = assertInstanceOf(PublishException.class, failure.getCause());
            assertTrue(error.isRetriable(), error.toString());
            assertInstanceOf(org.apache.kafka.common.errors.TimeoutException.class, error.getCause());

            CompletableFuture<Throwable> reported = new CompletableFuture<>();
            down.send(message, (position, sendError) -> reported.complete(sendError));
            PublishException callbackError = assertInstanceOf(PublishException.class,
                    reported.get(WAIT.toSeconds(), TimeUnit.SECONDS));
            assertTrue(callbackError.isRetriable(), callbackError.toString());
        }
    }

    @Test
    void aRecordWaitingForItsRetryHoldsUpOnlyItsOwnPartition() {
        String topic = SharedKafkaBroker.unique("retried");
        String slowKey = "slow";
        String otherKey = keyOnAnotherPartitionThan(slowKey, 3); // the broker makes 3 partitions per topic
        RetryPolicy tenTimes = RetryPolicy.builder().maxAttempts(10).initialBackoff(Duration.ofMillis(300)).multiplier(1.0)
                .jitter(0).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(tenTimes).build()) {
            List<Integer> slowAttempts = new CopyOnWriteArrayList<>();
            List<String> handled = new CopyOnWriteArrayList<>();
            bus.subscribe("retrying", topic, OrderCreated.class, SubscriptionOptions.fromEarliest(),
                    (event, ctx) -> {
                        if (event.orderId().equals(slowKey)) {
                            slowAttempts.add(ctx.attempt());
                            if (!handled.contains(otherKey)) {
                                // succeeds only once the other partition was served during this record's backoff
                                throw new IllegalStateException("the other partition has not been served yet");
                            }
                        }
                        handled.add(event.orderId());
                    });
            bus.publish(topic, slowKey, new OrderCreated(slowKey, 1)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> !slowAttempts.isEmpty());
            bus.publish(topic, otherKey, new OrderCreated(otherKey, 2)).toCompletableFuture().join();

            await().atMost(WAIT).until(() -> handled.contains(slowKey));
            assertEquals(List.of(otherKey, slowKey), handled);
            assertTrue(slowAttempts.size() >= 2 && slowAttempts.size() < 10, slowAttempts.toString());
            assertEquals(slowAttempts.size(), slowAttempts.get(slowAttempts.size() - 1), "attempts count up across redeliveries");
        }
    }

    /** A key that Kafka's default partitioner puts on another partition than {@code key}'s. */
    private static String keyOnAnotherPartitionThan(String key, int partitions) {
        int taken = partitionOf(key, partitions);
        for (int i = 0; ; i++) {
            String candidate = "other-" + i;
            if (partitionOf(candidate, partitions) != taken) {
                return candidate;
            }
        }
    }

    private static int partitionOf(String key, int partitions) {
        byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
        return org.apache.kafka.common.utils.Utils.toPositive(org.apache.kafka.common.utils.Utils.murmur2(bytes)) % partitions;
    }

    @Test
    void eventPublishedOnTheBusReachesTheHandlerAndItsOutputCarriesCorrelation() {
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        try (EventBus bus = bus()) {
            List<Message> received = new CopyOnWriteArrayList<>();
            bus.subscribe("payment", orders, OrderCreated.class,
                    (event, ctx) -> bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())));
            bus.subscribe("audit", payments, Message.class, (message, ctx) -> received.add(message));

            Message order = Message.builder(orders).key("o-1").type("order-created")
                    .payload(new OrderCreated("o-1", 100)).header(MessageHeaders.CORRELATION_ID, "corr-1").build();
            bus.publish(order).toCompletableFuture().join();

            await().atMost(WAIT).until(() -> received.size() == 1);
            Message payment = received.get(0);
            assertEquals("payment-processed", payment.type());
            assertEquals("o-1", payment.key());
            assertEquals("corr-1", payment.correlationId().orElseThrow());
            assertEquals(order.id(), payment.causationId().orElseThrow());
        }
    }

    @Test
    void plainKafkaConsumerFindsTheDocumentedHeadersAndJsonPayload() throws Exception {
        String topic = SharedKafkaBroker.unique("order-created");
        Message sent;
        try (EventBus bus = bus()) {
            sent = Message.builder(topic).key("o-7").type("order-created").payload(new OrderCreated("o-7", 250))
                    .header(MessageHeaders.CORRELATION_ID, "corr-7").header(MessageHeaders.SAGA_ID, "saga-7")
                    .header(MessageHeaders.TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                    .build();
            bus.publish(sent).toCompletableFuture().join();
        }
        ConsumerRecord<String, byte[]> record = readOne(topic);
        assertEquals("o-7", record.key());
        assertEquals(sent.timestamp().toEpochMilli(), record.timestamp());
        Map<String, String> headers = new HashMap<>();
        for (Header header : record.headers()) {
            headers.put(header.key(), new String(header.value(), StandardCharsets.UTF_8));
        }
        assertEquals(Map.of(
                "message-id", sent.id(),
                "event-type", "order-created",
                "event-version", "1",
                "correlation-id", "corr-7",
                "saga-id", "saga-7",
                "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), headers);
        JsonNode payload = JSON.readTree(record.value());
        assertEquals("o-7", payload.get("orderId").asText());
        assertEquals(250, payload.get("amount").asLong());
    }

    @Test
    void busConsumesWhatAPlainKafkaProducerWrote() throws Exception {
        String topic = SharedKafkaBroker.unique("order-created");
        List<OrderCreated> events = new CopyOnWriteArrayList<>();
        List<Message> messages = new CopyOnWriteArrayList<>();
        try (EventBus bus = bus()) {
            bus.subscribe("payment", topic, OrderCreated.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (event, ctx) -> {
                        events.add(event);
                        messages.add(ctx.message());
                    });
            try (KafkaProducer<String, byte[]> producer = plainProducer()) {
                RecordHeaders headers = new RecordHeaders();
                headers.add("message-id", "nest-1".getBytes(StandardCharsets.UTF_8));
                headers.add("event-type", "order-created".getBytes(StandardCharsets.UTF_8));
                headers.add("event-version", "1".getBytes(StandardCharsets.UTF_8));
                headers.add("correlation-id", "corr-nest".getBytes(StandardCharsets.UTF_8));
                producer.send(new ProducerRecord<>(topic, null, "o-9", "{\"orderId\":\"o-9\",\"amount\":42}"
                        .getBytes(StandardCharsets.UTF_8), headers)).get();
                // a service that sets no headers at all: type defaults to the topic... which is not registered,
                // so it goes to the dead-letter topic instead of being dropped; covered in the next test
            }
            await().atMost(WAIT).until(() -> events.size() == 1);
        }
        assertEquals(new OrderCreated("o-9", 42), events.get(0));
        Message message = messages.get(0);
        assertEquals("nest-1", message.id());
        assertEquals("o-9", message.key());
        assertEquals("corr-nest", message.correlationId().orElseThrow());
    }

    @Test
    void recordWithoutStandardHeadersGetsStableIdAndTopicAsType() throws Exception {
        String topic = SharedKafkaBroker.unique("legacy");
        List<Message> first = new CopyOnWriteArrayList<>();
        List<Message> second = new CopyOnWriteArrayList<>();
        try (KafkaProducer<String, byte[]> producer = plainProducer()) {
            producer.send(new ProducerRecord<>(topic, "k", "{\"x\":1}".getBytes(StandardCharsets.UTF_8))).get();
        }
        try (Subscription a = transport.subscribe("reader-a", TopicPattern.of(topic), StartPosition.EARLIEST,
                record -> first.add(record.message()));
             Subscription b = transport.subscribe("reader-b", TopicPattern.of(topic), StartPosition.EARLIEST,
                     record -> second.add(record.message()))) {
            await().atMost(WAIT).until(() -> first.size() == 1 && second.size() == 1);
        }
        assertEquals(topic, first.get(0).type());
        assertEquals(1, first.get(0).version());
        assertEquals(first.get(0).id(), second.get(0).id(), "the derived id is the same for every reader");
        assertEquals("{\"x\":1}", new String((byte[]) first.get(0).payload(), StandardCharsets.UTF_8));
    }

    @Test
    void failingHandlerIsRetriedThenDeadLetteredWithOriginHeadersAndTheGroupGoesOn() {
        String topic = SharedKafkaBroker.unique("order-created");
        try (EventBus bus = bus()) {
            List<String> handled = new CopyOnWriteArrayList<>();
            AtomicInteger attempts = new AtomicInteger();
            bus.subscribe("payment", topic, OrderCreated.class, (event, ctx) -> {
                if (event.orderId().equals("bad")) {
                    attempts.incrementAndGet();
                    throw new IllegalStateException("card declined");
                }
                handled.add(event.orderId());
            });
            List<Message> deadLetters = new CopyOnWriteArrayList<>();
            bus.subscribe("ops", topic + ".DLT", Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (m, ctx) -> deadLetters.add(m));
            bus.publish(topic, "k", new OrderCreated("bad", 1));
            bus.publish(topic, "k", new OrderCreated("good", 2));

            await().atMost(WAIT).until(() -> handled.size() == 1 && deadLetters.size() == 1);
            assertEquals(List.of("good"), handled);
            assertEquals(3, attempts.get());
            Message dead = deadLetters.get(0);
            assertEquals("card declined", dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
            assertEquals(IllegalStateException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
            assertEquals(topic, dead.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow());
            assertEquals("payment", dead.header(MessageHeaders.DLT_ORIGINAL_GROUP).orElseThrow());
            assertTrue(dead.header(MessageHeaders.DLT_ORIGINAL_OFFSET).isPresent());
            assertEquals("3", dead.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
            await().atMost(WAIT).until(() -> transport.committedOffsets("payment", topic).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);
        }
    }

    @Test
    void aDeadLetterKeepsTheOriginalsCausationIdWhenItHadOne() {
        // docs/kafka.md, dead-letter headers: causation-id is "the original message id (when the original had none)"
        String topic = SharedKafkaBroker.unique("order-created");
        try (EventBus bus = bus()) {
            bus.subscribe("payment", topic, OrderCreated.class, (event, ctx) -> {
                throw new IllegalStateException("card declined");
            });
            List<Message> deadLetters = new CopyOnWriteArrayList<>();
            bus.subscribe("ops", topic + ".DLT", Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (m, ctx) -> deadLetters.add(m));
            Message order = Message.builder(topic).key("k").type("order-created")
                    .payload(new OrderCreated("bad", 1)).header(MessageHeaders.CAUSATION_ID, "command-7").build();
            bus.publish(order).toCompletableFuture().join();

            await().atMost(WAIT).until(() -> deadLetters.size() == 1);
            Message dead = deadLetters.get(0);
            assertEquals("k", dead.key());
            assertEquals("command-7", dead.header(MessageHeaders.CAUSATION_ID).orElseThrow());
        }
    }

    @Test
    void undecodableRecordIsDeadLetteredNotLost() throws Exception {
        String topic = SharedKafkaBroker.unique("order-created");
        try (EventBus bus = bus()) {
            List<Message> deadLetters = new CopyOnWriteArrayList<>();
            bus.subscribe("payment", topic, OrderCreated.class, (event, ctx) -> {
            });
            bus.subscribe("ops", topic + ".DLT", Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (m, ctx) -> deadLetters.add(m));
            try (KafkaProducer<String, byte[]> producer = plainProducer()) {
                RecordHeaders headers = new RecordHeaders();
                headers.add("event-type", "order-created".getBytes(StandardCharsets.UTF_8));
                producer.send(new ProducerRecord<>(topic, null, "k", "not json".getBytes(StandardCharsets.UTF_8), headers)).get();
            }
            await().atMost(WAIT).until(() -> deadLetters.size() == 1);
            assertEquals("undecodable", deadLetters.get(0).header(MessageHeaders.DLT_REASON).orElseThrow());
            assertEquals("not json", new String((byte[]) deadLetters.get(0).payload(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void recordIsRedeliveredWhenTheRecordHandlerThrowsWhileOtherKeysGoOn() {
        String topic = SharedKafkaBroker.unique("flaky");
        List<String> seen = new CopyOnWriteArrayList<>();
        AtomicInteger failuresLeft = new AtomicInteger(2);
        try (Subscription ignored = transport.subscribe("g", TopicPattern.of(topic), StartPosition.LATEST, record -> {
            String key = record.message().key();
            if (key.equals("poison") && failuresLeft.get() > 0) {
                failuresLeft.decrementAndGet();
                throw new IllegalStateException("dead-letter topic unavailable");
            }
            seen.add(key + ":" + new String((byte[]) record.message().payload(), StandardCharsets.UTF_8));
        })) {
            send(topic, "poison", "1");
            send(topic, "poison", "2");
            send(topic, "other", "3");
            await().atMost(WAIT).until(() -> seen.containsAll(List.of("poison:1", "poison:2", "other:3")));
        }
        assertEquals(List.of("poison:1", "poison:2"), seen.stream().filter(s -> s.startsWith("poison")).toList(),
                "redelivered in order, each handled once");
        assertEquals(0, failuresLeft.get());
    }

    /**
     * An Error the bus does not turn into a failure (it passes on anything but AssertionError and
     * StackOverflowError, "as a crash would") is redelivered after redeliveryBackoff, as by the in-memory
     * transport, instead of ending the consumer's thread for good (docs/kafka.md).
     */
    @Test
    void anErrorFromTheHandlerIsRedeliveredAndTheConsumerKeepsRunning() {
        String topic = SharedKafkaBroker.unique("crashing");
        List<String> seen = new CopyOnWriteArrayList<>();
        AtomicInteger errorsLeft = new AtomicInteger(1);
        try (Subscription subscription = transport.subscribe("g", TopicPattern.of(topic), StartPosition.LATEST, record -> {
            String key = record.message().key();
            if (key.equals("crash") && errorsLeft.getAndDecrement() > 0) {
                throw new NoClassDefFoundError("com/example/Missing");
            }
            seen.add(key);
        })) {
            send(topic, "crash", "1");
            send(topic, "crash", "2");
            await().atMost(WAIT).until(() -> seen.size() == 2);
            assertEquals(List.of("crash", "crash"), seen);
            assertTrue(subscription.isActive(), "the consumer keeps running");
        }
    }

    @ParameterizedTest(name = "exactly-once {0}")
    @ValueSource(booleans = {false, true})
    void aHandlerThatLeavesItsThreadInterruptedDoesNotEndTheMember(boolean exactlyOnce) {
        // Only closing interrupts a member's thread, and it stops the member first. A handler that restored the
        // interrupt it caught (and returned, or threw the InterruptedException) left the flag set, and the member's
        // next Kafka call threw InterruptException, taken for closing: the member ended with no more than a failed
        // final commit in the log, isActive() false, and the group's records went unhandled.
        String topic = SharedKafkaBroker.unique("interrupted");
        List<String> seen = new CopyOnWriteArrayList<>();
        AtomicInteger throwsLeft = new AtomicInteger(1);
        KafkaTransport members = !exactlyOnce ? transport : KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("interrupted")).redeliveryBackoff(Duration.ofMillis(200)).build();
        try (Subscription subscription = members.subscribe(SharedKafkaBroker.unique("g"), TopicPattern.of(topic),
                StartPosition.EARLIEST, record -> {
                    String value = new String((byte[]) record.message().payload(), StandardCharsets.UTF_8);
                    seen.add(value);
                    if (value.equals("returns-interrupted")) {
                        Thread.currentThread().interrupt();
                    } else if (value.equals("throws-interrupted") && throwsLeft.getAndDecrement() > 0) {
                        Thread.currentThread().interrupt(); // as the bus does before it passes the exception on
                        throw new InterruptedException("a blocking call the handler made");
                    }
                })) {
            send(topic, "order-1", "returns-interrupted"); // one key: one partition, in this order
            send(topic, "order-1", "throws-interrupted");
            send(topic, "order-1", "last");
            await().atMost(WAIT).until(() -> seen.contains("last") || !subscription.isActive());
            // (exactly-once handles the batch again from its first record, which may be the first of the three)
            assertEquals("returns-interrupted", seen.get(0), seen.toString());
            assertEquals(2, java.util.Collections.frequency(seen, "throws-interrupted"),
                    "the record whose handler threw is delivered again: " + seen);
            assertEquals("last", seen.get(seen.size() - 1), seen.toString());
            assertTrue(subscription.isActive(), "the member keeps running");
        } finally {
            if (members != transport) {
                members.close();
            }
        }
    }

    @Test
    void aLatestGroupThatClosesBeforeHandlingARecordGetsItOnResubscribing() {
        // StartPosition.LATEST: "only messages published after the subscription" - once subscribed, the group's
        // start position is fixed; a record published after it and never handled must not be skipped later.
        String topic = SharedKafkaBroker.unique("unhandled");
        String group = SharedKafkaBroker.unique("g");
        send(topic, "k", "before"); // creates the topic; published before the subscription, so never delivered
        AtomicInteger attempts = new AtomicInteger();
        Subscription first = transport.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, record -> {
            attempts.incrementAndGet();
            throw new IllegalStateException("not handled before closing");
        });
        send(topic, "k", "after");
        await().atMost(WAIT).until(() -> attempts.get() >= 1);
        first.close();

        List<String> seen = new CopyOnWriteArrayList<>();
        try (Subscription ignored = transport.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST,
                record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8)))) {
            send(topic, "k", "marker"); // same key, same partition: delivered after "after"
            await().atMost(WAIT).until(() -> seen.contains("marker"));
        }
        assertEquals(List.of("after", "marker"), seen);
    }

    @Test
    void aLatestWildcardGroupKeepsItsStartOnATopicCreatedAfterItSubscribed() {
        // A LATEST wildcard group reads a topic created after its subscription from the beginning; that start
        // must be fixed for the group like the end of a topic that existed: a later member (here: the group
        // resubscribing, for which the topic now exists) started at its end and skipped the unhandled record.
        String prefix = SharedKafkaBroker.unique("wild-start");
        String group = SharedKafkaBroker.unique("g");
        AtomicInteger attempts = new AtomicInteger();
        Subscription first = transport.subscribe(group, TopicPattern.of(prefix + "-*"), StartPosition.LATEST, record -> {
            attempts.incrementAndGet();
            throw new IllegalStateException("not handled before closing");
        });
        send(prefix + "-a", "k", "first"); // creates the topic after the subscription: read from its beginning
        await().atMost(WAIT).until(() -> attempts.get() >= 1);
        first.close();

        List<String> seen = new CopyOnWriteArrayList<>();
        try (Subscription ignored = transport.subscribe(group, TopicPattern.of(prefix + "-*"), StartPosition.LATEST,
                record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8)))) {
            send(prefix + "-a", "k", "marker"); // same key, same partition: delivered after "first"
            await().atMost(WAIT).until(() -> seen.contains("marker"));
        }
        assertEquals(List.of("first", "marker"), seen);
    }

    @Test
    void orderIsKeptPerKey() {
        String topic = SharedKafkaBroker.unique("ordered");
        Map<String, List<Integer>> byKey = new HashMap<>();
        try (Subscription ignored = transport.subscribe("g", TopicPattern.of(topic), StartPosition.LATEST, record -> {
            synchronized (byKey) {
                byKey.computeIfAbsent(record.message().key(), k -> new ArrayList<>())
                        .add(Integer.parseInt(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8)));
            }
        })) {
            for (int i = 0; i < 50; i++) {
                send(topic, "key-" + (i % 5), Integer.toString(i));
            }
            await().atMost(WAIT).until(() -> {
                synchronized (byKey) {
                    return byKey.values().stream().mapToInt(List::size).sum() == 50;
                }
            });
        }
        for (int k = 0; k < 5; k++) {
            List<Integer> expected = new ArrayList<>();
            for (int i = k; i < 50; i += 5) {
                expected.add(i);
            }
            assertEquals(expected, byKey.get("key-" + k));
        }
    }

    @Test
    void wildcardSubscriptionSeesTopicsCreatedLaterButNeverDeadLetterTopics() {
        String prefix = SharedKafkaBroker.unique("wild");
        List<String> topics = new CopyOnWriteArrayList<>();
        try (Subscription ignored = transport.subscribe("catch-all", TopicPattern.of(prefix + "-*"), StartPosition.LATEST,
                record -> topics.add(record.message().topic()))) {
            send(prefix + "-a", "k", "1");
            send(prefix + "-a.DLT", "k", "1");
            send(prefix + "-b", "k", "1");
            await().atMost(WAIT).until(() -> topics.size() >= 2);
            send(prefix + "-a", "k", "2");
            await().atMost(WAIT).until(() -> topics.size() >= 3);
        }
        assertFalse(topics.contains(prefix + "-a.DLT"));
        assertEquals(2, topics.stream().filter(t -> t.equals(prefix + "-a")).count());
        assertTrue(topics.contains(prefix + "-b"));
    }

    @Test
    void kafkaRegexOfAWildcardExcludesDeadLetterAndInternalTopicsLikeTopicPattern() {
        TopicPattern pattern = TopicPattern.of("order-*");
        java.util.regex.Pattern regex = io.streamsaga.kafka.internal.ConsumerLoop.kafkaRegex(pattern);
        for (String topic : List.of("order-created", "order-", "order-a.b", "order-created.DLT", "__order-x", "orders", "x-order-a")) {
            assertEquals(pattern.matches(topic), regex.matcher(topic).matches(), topic);
        }
        assertTrue(io.streamsaga.kafka.internal.ConsumerLoop.kafkaRegex(TopicPattern.of("*")).matcher("anything").matches());
    }

    @Test
    void aGroupsLagReachesZeroPastATransactionThatAbortedAfterItCaughtUp() throws Exception {
        // The member's poll moves past the aborted records and the abort marker without returning a record,
        // and only handled records were committed: the group's offset stayed before them, below endOffsets.
        lagReachesZeroPastATransactionThatAbortedAfterTheGroupCaughtUp(transport);
    }

    @Test
    void anExactlyOnceGroupsLagReachesZeroPastATransactionThatAbortedAfterItCaughtUp() throws Exception {
        // Exactly-once: the moved position is committed in a transaction of the member's own (no plain commit,
        // which the coordinator could apply after a later transaction's offsets).
        KafkaTransport exactlyOnce = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("lag")).build();
        try {
            lagReachesZeroPastATransactionThatAbortedAfterTheGroupCaughtUp(exactlyOnce);
        } finally {
            exactlyOnce.close();
        }
    }

    private static void lagReachesZeroPastATransactionThatAbortedAfterTheGroupCaughtUp(KafkaTransport members)
            throws Exception {
        String topic = SharedKafkaBroker.unique("aborted");
        String group = SharedKafkaBroker.unique("g");
        send(topic, "k", "first");
        CountDownLatch handled = new CountDownLatch(1);
        try (Subscription member = members.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                record -> handled.countDown());
             KafkaProducer<String, byte[]> transactional = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("aborting")),
                     new StringSerializer(), new ByteArraySerializer())) {
            assertTrue(handled.await(WAIT.toSeconds(), TimeUnit.SECONDS));
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, topic).equals(nonEmpty(transport.endOffsets(topic))));
            transactional.initTransactions();
            transactional.beginTransaction();
            transactional.send(new ProducerRecord<>(topic, "k", "aborted".getBytes(StandardCharsets.UTF_8))).get();
            transactional.abortTransaction();
            // the end passes the aborted record and its marker once the marker is written
            await().atMost(WAIT).until(() -> transport.endOffsets(topic).containsValue(3L));
            Map<Integer, Long> end = nonEmpty(transport.endOffsets(topic));
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, topic).equals(end));
        }
    }

    /** The partitions of {@code ends} that hold anything (an empty one has no committed offset). */
    private static Map<Integer, Long> nonEmpty(Map<Integer, Long> ends) {
        Map<Integer, Long> result = new HashMap<>(ends);
        result.values().removeIf(end -> end == 0);
        return result;
    }

    @Test
    void newGroupReplaysFromEarliestAndItsLagReachesZero() {
        String topic = SharedKafkaBroker.unique("events");
        for (int i = 0; i < 10; i++) {
            send(topic, "k" + i, Integer.toString(i));
        }
        Map<Integer, Long> end = transport.endOffsets(topic);
        assertEquals(10L, end.values().stream().mapToLong(Long::longValue).sum());
        AtomicInteger replayed = new AtomicInteger();
        AtomicInteger latest = new AtomicInteger();
        try (Subscription replay = transport.subscribe("projection-v2", TopicPattern.of(topic), StartPosition.EARLIEST,
                record -> replayed.incrementAndGet());
             Subscription tail = transport.subscribe("tail", TopicPattern.of(topic), StartPosition.LATEST,
                     record -> latest.incrementAndGet())) {
            await().atMost(WAIT).until(() -> replayed.get() == 10);
            await().atMost(WAIT).until(() -> transport.committedOffsets("projection-v2", topic).equals(end));
            assertTrue(transport.consumerGroups(topic).containsAll(List.of("projection-v2", "tail")));
            assertEquals(0, latest.get(), "a latest group does not see what was published before it");
        }
        assertTrue(transport.endOffsets(SharedKafkaBroker.unique("never-created")).isEmpty());
    }

    @Test
    void aGroupWhoseSubscriptionClosedCountsUntilAListingOfTheBrokersGroupsMadeAfterTheClose() {
        // A closed subscription's group counts by the broker's listing from then on; one listed before the
        // group's first commit (here the start a LATEST group without members commits in subscribe) knows nothing of it,
        // and dropping the group at the close would release payloads the group resumes before.
        String topic = SharedKafkaBroker.unique("events");
        String group = SharedKafkaBroker.unique("closed");
        send(topic, "k", "0");
        try (KafkaTransport listing = KafkaTransport.builder().bootstrapServers(bootstrap)
                .consumerGroupsMaxAge(Duration.ofHours(1)).build()) {
            assertEquals(Set.of(), listing.consumerGroups(topic));
            listing.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, record -> { }).close();
            assertEquals(Set.of(group), listing.consumerGroups(topic));
            assertEquals(listing.endOffsets(topic), listing.committedOffsets(group, topic), "the broker keeps the group's start");
        }
    }

    @Test
    void aCallerWhoseListingPredatesACloseStillCountsTheGroupAfterANewerListingDroppedItsClosedEntry() throws Exception {
        // consumerGroups took the broker's listing, then read the open subscriptions, then dropped the closed
        // ones older than its listing. A caller whose listing predated a close (here taken before the group's
        // only commits) and that reached the closed ones after a caller with a newer listing had dropped them
        // missed the group, so the claim check could release a payload the group resumes before.
        String topic = SharedKafkaBroker.unique("events");
        String group = SharedKafkaBroker.unique("closing");
        AtomicReference<Thread> held = new AtomicReference<>();
        CountDownLatch holding = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (KafkaTransport listing = KafkaTransport.builder().bootstrapServers(bootstrap)
                .consumerGroupsMaxAge(Duration.ZERO)
                .consumerGroupsStep(() -> {
                    if (Thread.currentThread() == held.get()) {
                        holding.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }).build()) {
            CompletableFuture<Set<String>> early = new CompletableFuture<>();
            Thread caller = new Thread(() -> {
                try {
                    early.complete(listing.consumerGroups(topic));
                } catch (RuntimeException e) {
                    early.completeExceptionally(e);
                }
            });
            caller.setDaemon(true);
            held.set(caller);
            caller.start();
            try {
                assertTrue(holding.await(WAIT.toSeconds(), TimeUnit.SECONDS), "the early caller is held");
                CountDownLatch handled = new CountDownLatch(1);
                Subscription subscription = listing.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                        record -> handled.countDown());
                send(topic, "k", "0");
                assertTrue(handled.await(WAIT.toSeconds(), TimeUnit.SECONDS));
                subscription.close();
                assertEquals(Set.of(group), listing.consumerGroups(topic), "a listing made after the close");
            } finally {
                release.countDown();
            }
            assertEquals(Set.of(group), early.get(WAIT.toSeconds(), TimeUnit.SECONDS));
        }
    }

    @Test
    void theLagOfAGroupReachesZeroOnATopicWrittenInTransactions() throws Exception {
        // docs/kafka.md: endOffsets and committedOffsets "give a group's lag, which is the progress of a Kappa
        // replay". A transaction's commit marker takes an offset after its last record: a group that committed
        // only "last record + 1" kept a lag of one for ever, and a replay of the topic never caught up.
        String topic = SharedKafkaBroker.unique("transactional");
        Map<String, Object> config = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("tx"));
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(config, new StringSerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            for (int i = 0; i < 3; i++) {
                producer.send(new ProducerRecord<>(topic, "k", Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.commitTransaction();
        }
        Map<Integer, Long> end = transport.endOffsets(topic);
        AtomicInteger handled = new AtomicInteger();
        String group = SharedKafkaBroker.unique("replay");
        try (Subscription ignored = transport.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                record -> handled.incrementAndGet())) {
            await().atMost(WAIT).until(() -> handled.get() == 3);
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, topic).entrySet().stream()
                    .allMatch(e -> e.getValue() >= end.getOrDefault(e.getKey(), 0L))
                    && !transport.committedOffsets(group, topic).isEmpty());
        }
        assertEquals(3, handled.get());
    }

    @Test
    void closingSubscriptionsAndTransportEndsTheirThreads() {
        KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap).build();
        String topic = SharedKafkaBroker.unique("closing");
        Subscription first = own.subscribe("g1", TopicPattern.of(topic), StartPosition.LATEST, record -> {
        });
        Subscription second = own.subscribe("g2", TopicPattern.of(topic), StartPosition.LATEST, record -> {
        });
        assertTrue(first.isActive() && second.isActive());
        first.close();
        assertFalse(first.isActive());
        own.close();
        assertFalse(second.isActive());
        assertTrue(Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("streamsaga-kafka-g1") || t.getName().startsWith("streamsaga-kafka-g2")));
    }

    @Test
    void closingTheTransportStopsAllItsSubscriptionsTogetherAndClosesEveryOne() throws Exception {
        // close() closed the subscriptions one after the other, each waiting up to twice the close timeout for
        // its thread: with handlers that do not return (or a broker that does not answer the final commit) the
        // next member was not even told to stop before that, so the close took that long per subscription.
        String topic = SharedKafkaBroker.unique("closing");
        int members = 3;
        CountDownLatch handling = new CountDownLatch(members);
        CountDownLatch release = new CountDownLatch(1);
        KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .closeTimeout(Duration.ofMinutes(10)).build();
        List<Subscription> subscriptions = new ArrayList<>();
        List<String> groups = new ArrayList<>();
        CompletableFuture<Void> closed = null;
        RecordPosition sent;
        try {
            for (int i = 0; i < members; i++) {
                String group = SharedKafkaBroker.unique("g" + i);
                groups.add(group);
                subscriptions.add(own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> {
                    handling.countDown();
                    release.await();
                }));
            }
            sent = transport.send(Message.builder(topic).key("k").type("test").payload(new byte[0]).build())
                    .toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertTrue(handling.await(WAIT.toSeconds(), TimeUnit.SECONDS), "every member handles the record");
            closed = CompletableFuture.runAsync(own::close);
            await().atMost(WAIT).until(() -> subscriptions.stream().noneMatch(Subscription::isActive));
            assertFalse(closed.isDone(), "close waits for the handlers");
        } finally {
            release.countDown();
            (closed != null ? closed : CompletableFuture.runAsync(own::close)).get(WAIT.toSeconds(), TimeUnit.SECONDS);
        }
        assertEquals(Set.of(), own.subscriptions());
        for (String group : groups) {
            assertEquals(Map.of(sent.partition(), sent.offset() + 1), transport.committedOffsets(group, topic),
                    "the last batch of " + group + " is committed");
        }
        assertTrue(Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> groups.stream().anyMatch(g -> t.getName().startsWith("streamsaga-kafka-" + g))));
    }

    @Test
    void memberNumbersAreTheLowestFreeOnesAlsoOnceEverySubscriptionOfTheGroupClosed() {
        // The numbers in use were kept per group for ever, an empty entry for every group ever subscribed; the
        // entry now goes with the group's last member, and a group subscribed again starts from 0.
        String topic = SharedKafkaBroker.unique("members");
        String group = SharedKafkaBroker.unique("g");
        try (KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .assignmentTimeout(Duration.ZERO).build()) {
            Subscription first = own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> { });
            Subscription second = own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> { });
            assertEquals(Set.of("0", "1"), membersRunning(group));
            first.close();
            Subscription third = own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> { });
            assertEquals(Set.of("0", "1"), membersRunning(group), "the lowest free number");
            second.close();
            third.close();
            assertEquals(Set.of(), membersRunning(group));
            own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> { });
            assertEquals(Set.of("0"), membersRunning(group), "after every member closed, from 0 again");
            own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> { });
            assertEquals(Set.of("0", "1"), membersRunning(group));
        }
        assertEquals(Set.of(), membersRunning(group));
    }

    /** The member numbers of the group's member threads alive in this JVM. */
    private static Set<String> membersRunning(String group) {
        String prefix = "streamsaga-kafka-" + group + "-";
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .map(Thread::getName)
                .filter(name -> name.startsWith(prefix))
                .map(name -> name.substring(prefix.length()))
                .collect(java.util.stream.Collectors.toSet());
    }

    @Test
    void anAdminQueryThatTimesOutFailsWithARetriableKafkaTransportException() throws Exception {
        // The timeout (and an interrupt) of an admin query went to the failure overload for publishing, so
        // committedOffsets, endOffsets and partitions failed with a PublishException naming "offsets of group g"
        // as its topic, not retriable, rather than the documented retriable KafkaTransportException.
        try (SilentBroker silent = new SilentBroker();
             KafkaTransport unreachable = KafkaTransport.builder().bootstrapServers(silent.address())
                     .requestTimeout(Duration.ofMillis(200))
                     .adminProperty(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 600_000)
                     .adminProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 600_000)
                     .closeTimeout(Duration.ofSeconds(1)).build()) {
            KafkaTransportException committed = assertThrows(KafkaTransportException.class,
                    () -> unreachable.committedOffsets("g", "orders"));
            assertTrue(committed.isRetriable(), committed.toString());
            KafkaTransportException ends = assertThrows(KafkaTransportException.class, () -> unreachable.endOffsets("orders"));
            assertTrue(ends.isRetriable(), ends.toString());
            KafkaTransportException latest = assertThrows(KafkaTransportException.class, () -> unreachable.subscribe(
                    "g", TopicPattern.of("orders"), StartPosition.LATEST, record -> { }));
            assertTrue(latest.isRetriable(), latest.toString());
            assertEquals(Set.of(), unreachable.subscriptions(), "no member is started");
            silent.disconnect(); // or the producer's close would wait for its request to the silent broker
        }
    }

    @Test
    void aCallerWaitingForAnotherCallersListingOfTheBrokersConsumerGroupsCanBeInterrupted() throws Exception {
        // consumerGroups lists the broker's groups for one caller at a time; the others waited on a lock, which
        // an interrupt does not end: a consumer thread acknowledging a claim-checked record behind a listing
        // that hangs (an unreachable broker) could not be stopped by closing its subscription, and after the
        // listing failed each waiting caller listed again in turn. A server that accepts and never answers
        // stands for the broker; requests would time out after 10 minutes.
        try (SilentBroker silent = new SilentBroker();
             KafkaTransport unreachable = KafkaTransport.builder().bootstrapServers(silent.address())
                     .requestTimeout(Duration.ofMinutes(10))
                     .adminProperty(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 600_000)
                     .adminProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 600_000)
                     .closeTimeout(Duration.ofSeconds(1)).build()) {
            Thread first = new Thread(() -> {
                try {
                    unreachable.consumerGroups("orders");
                } catch (RuntimeException expected) {
                    // the transport closed under it
                }
            });
            first.setDaemon(true);
            first.start();
            await().atMost(WAIT).until(() -> silent.connections() > 0
                    && (first.getState() == Thread.State.WAITING || first.getState() == Thread.State.TIMED_WAITING));

            AtomicReference<RuntimeException> secondFailure = new AtomicReference<>();
            Thread second = new Thread(() -> {
                try {
                    unreachable.consumerGroups("payments");
                } catch (RuntimeException e) {
                    secondFailure.set(e);
                }
            });
            second.setDaemon(true);
            second.start();
            await().atMost(WAIT).until(() -> second.getState() == Thread.State.BLOCKED
                    || second.getState() == Thread.State.WAITING || second.getState() == Thread.State.TIMED_WAITING);
            second.interrupt();
            await().atMost(WAIT).until(() -> !second.isAlive());
            assertInstanceOf(KafkaTransportException.class, secondFailure.get());
            assertTrue(first.isAlive(), "the first caller still waits for the broker");
            silent.disconnect(); // or the producer's close would wait for its request to the silent broker
        }
    }

    @Test
    void aHandlerThatClosesItsSubscriptionAndSubscribesItsGroupAgainDoesNotWaitForTheAssignment() throws Exception {
        // The new member's first assignment needs the group's rebalance, which waits for the closed member to
        // leave, and it leaves once this handler has returned: subscribe waiting for that assignment stalled
        // the handler for assignmentTimeout (here 10 minutes).
        String topic = SharedKafkaBroker.unique("resubscribed");
        String group = SharedKafkaBroker.unique("g");
        try (KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .assignmentTimeout(Duration.ofMinutes(10)).build()) {
            send(topic, "k", "first");
            AtomicReference<Subscription> first = new AtomicReference<>();
            CountDownLatch firstReturned = new CountDownLatch(1);
            CountDownLatch resubscribed = new CountDownLatch(1);
            List<String> seenAfterwards = new CopyOnWriteArrayList<>();
            first.set(own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST, record -> {
                firstReturned.await();
                first.get().close();
                own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                        next -> seenAfterwards.add(new String((byte[]) next.message().payload(), StandardCharsets.UTF_8)));
                resubscribed.countDown();
            }));
            firstReturned.countDown();
            assertTrue(resubscribed.await(WAIT.toSeconds(), TimeUnit.SECONDS), "subscribe, called from the handler, returned");
            send(topic, "k", "second");
            await().atMost(WAIT).until(() -> seenAfterwards.contains("second"));
        }
    }

    @Test
    void aLatestSubscriptionMadeFromAHandlerOfItsGroupGetsWhatIsPublishedAfterSubscribeReturned() throws Exception {
        // subscribe from a handler of the group returns before the assignment, which comes once the handler
        // returned; a group new to the topic starting at LATEST then started at the end as of the assignment,
        // so a record published between subscribe returning and the handler returning was never delivered.
        String trigger = SharedKafkaBroker.unique("trigger");
        String later = SharedKafkaBroker.unique("later");
        String group = SharedKafkaBroker.unique("g");
        send(later, "k", "before");
        send(trigger, "k", "go");
        List<String> seen = new CopyOnWriteArrayList<>();
        CountDownLatch published = new CountDownLatch(1);
        try (KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .assignmentTimeout(Duration.ofMinutes(10)).build()) {
            own.subscribe(group, TopicPattern.of(trigger), StartPosition.EARLIEST, record -> {
                own.subscribe(group, TopicPattern.of(later), StartPosition.LATEST,
                        next -> seen.add(new String((byte[]) next.message().payload(), StandardCharsets.UTF_8)));
                send(later, "k", "after");
                published.countDown();
            });
            assertTrue(published.await(WAIT.toSeconds(), TimeUnit.SECONDS));
            KafkaSubscription made = own.subscriptions().stream()
                    .filter(s -> s.pattern().equals(TopicPattern.of(later))).findFirst().orElseThrow();
            assertTrue(made.awaitAssignment(WAIT), "assigned once the handler returned");
            send(later, "k", "last");
            await().atMost(WAIT).until(() -> seen.contains("last"));
            assertEquals(List.of("after", "last"), seen);
        }
    }

    @Test
    void aLatestSubscriptionMadeFromAHandlerOfItsGroupGetsATransactionThatWasOpenWhenSubscribeReturned() throws Exception {
        // Not waiting for the assignment, subscribe read the end offsets as the high watermark, past the records
        // of a transaction still open; a read_committed member reads up to the last stable offset, and the
        // assignment's own seek to the end lands there. The member started after those records, so once the
        // transaction committed (after subscribe returned) they were never delivered.
        String trigger = SharedKafkaBroker.unique("trigger");
        String later = SharedKafkaBroker.unique("later");
        String group = SharedKafkaBroker.unique("g");
        send(later, "k", "before");
        List<String> seen = new CopyOnWriteArrayList<>();
        CountDownLatch subscribed = new CountDownLatch(1);
        try (KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .assignmentTimeout(Duration.ofMinutes(10)).build();
             KafkaProducer<String, byte[]> transactional = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("open")),
                     new StringSerializer(), new ByteArraySerializer())) {
            transactional.initTransactions();
            transactional.beginTransaction();
            transactional.send(new ProducerRecord<>(later, "k", "open".getBytes(StandardCharsets.UTF_8))).get();
            send(trigger, "k", "go");
            own.subscribe(group, TopicPattern.of(trigger), StartPosition.EARLIEST, record -> {
                own.subscribe(group, TopicPattern.of(later), StartPosition.LATEST,
                        next -> seen.add(new String((byte[]) next.message().payload(), StandardCharsets.UTF_8)));
                subscribed.countDown();
            });
            assertTrue(subscribed.await(WAIT.toSeconds(), TimeUnit.SECONDS));
            transactional.commitTransaction();
            send(later, "k", "last");
            await().atMost(WAIT).until(() -> seen.contains("last"));
            assertEquals(List.of("open", "last"), seen);
        }
    }

    @Test
    void aLatestGroupThatSubscribesAgainReadsAPartitionAddedWhileItWasAwayFromItsBeginning() throws Exception {
        // The group resumes the topic where it committed, but a partition added while it had no subscription has
        // no offset of the group: it started at the end read when subscribe ran again, so what was published to
        // it meanwhile (after the group had started on the topic) was skipped, while the other partitions resumed.
        String topic = SharedKafkaBroker.unique("grown");
        String group = SharedKafkaBroker.unique("g");
        List<String> seen = new CopyOnWriteArrayList<>();
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
             KafkaProducer<String, byte[]> producer = plainProducer()) {
            admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1))).all().get();
            RecordHandler handler = record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8));
            try (Subscription first = transport.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler)) {
                send(topic, "k", "a");
                await().atMost(WAIT).until(() -> seen.contains("a"));
            }
            admin.createPartitions(Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(2))).all().get();
            producer.send(new ProducerRecord<>(topic, 1, "k", "b".getBytes(StandardCharsets.UTF_8))).get();
            try (Subscription again = transport.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler)) {
                producer.send(new ProducerRecord<>(topic, 1, "k", "c".getBytes(StandardCharsets.UTF_8))).get();
                await().atMost(WAIT).until(() -> seen.contains("c"));
            }
            assertEquals(List.of("a", "b", "c"), seen);
        }
    }

    @Test
    void aLatestGroupWhoseFirstMemberCommittedItsStartOnSomePartitionsOnlyNeverReadsTheOthersHistory() throws Exception {
        // A LATEST member committed its start only on the partitions assigned to it; another member of the
        // group's first generation (here one that commits nothing, as one that crashed before its start commit)
        // held the other. A member subscribing then took that partition, without an offset on a topic the group
        // has offsets on, for one added while the group was away, and read its history from the beginning.
        String topic = SharedKafkaBroker.unique("partial");
        String group = SharedKafkaBroker.unique("g");
        List<String> seen = new CopyOnWriteArrayList<>();
        RecordHandler handler = record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8));
        CountDownLatch creatingConsumer = new CountDownLatch(1);
        CountDownLatch proceed = new CountDownLatch(1);
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
             KafkaProducer<String, byte[]> producer = plainProducer();
             KafkaTransport first = KafkaTransport.builder().bootstrapServers(bootstrap)
                     .consumerProperty(ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG, PausingInterceptor.class.getName())
                     .consumerProperty(PausingInterceptor.CONFIGURED, creatingConsumer)
                     .consumerProperty(PausingInterceptor.PROCEED, proceed).build();
             KafkaTransport second = KafkaTransport.builder().bootstrapServers(bootstrap)
                     .assignmentTimeout(Duration.ZERO).build()) {
            admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 2, (short) 1))).all().get();
            for (int partition = 0; partition < 2; partition++) {
                producer.send(new ProducerRecord<>(topic, partition, "k", ("old-" + partition).getBytes(StandardCharsets.UTF_8))).get();
            }
            CompletableFuture<Subscription> subscribing = CompletableFuture.supplyAsync(
                    () -> first.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler));
            assertTrue(creatingConsumer.await(WAIT.toSeconds(), TimeUnit.SECONDS), "the first subscribe read the ends");
            try (KafkaConsumer<String, byte[]> other = new KafkaConsumer<>(Map.of(
                    ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                    ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer())) {
                other.subscribe(List.of(topic));
                await().atMost(WAIT).until(() -> {
                    other.poll(Duration.ofMillis(100));
                    return !other.assignment().isEmpty();
                });
                proceed.countDown();
                // the first member joins; the group's rebalance gives each member one partition
                await().atMost(WAIT).until(() -> {
                    other.poll(Duration.ofMillis(100));
                    return subscribing.isDone() && other.assignment().size() == 1;
                });
                Subscription firstMember = subscribing.get();
                second.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler);
                firstMember.close();
            } // the other member leaves without a commit: the second member takes both partitions
            assertTrue(second.subscriptions().iterator().next().awaitAssignment(WAIT));
            for (int partition = 0; partition < 2; partition++) {
                producer.send(new ProducerRecord<>(topic, partition, "k", ("new-" + partition).getBytes(StandardCharsets.UTF_8))).get();
            }
            await().atMost(WAIT).until(() -> seen.containsAll(List.of("new-0", "new-1")));
            assertEquals(Set.of("new-0", "new-1"), Set.copyOf(seen));
        }
    }

    @Test
    void twoLatestSubscribesOfANewGroupMadeAtOnceSkipNothingPublishedAfterEitherReturned() throws Exception {
        // Two members of a new group subscribing at LATEST at once both commit the group's start through the
        // admin client, and the commit appended last wins. Feared: a later commit of a newer end skipping what
        // was published between the two. A subscribe commits only when its listing of the group's offsets, made
        // after it read the ends, found none, so the commit that lands last carries ends read before the other
        // one completed, before that subscribe returned; and the broker refuses both once a member has joined.
        // Here the first subscribe's commit (of the end before "during") is held after its listing until the
        // second subscribe has committed a newer end and returned and "after" is published.
        String topic = SharedKafkaBroker.unique("together");
        String group = SharedKafkaBroker.unique("g");
        send(topic, "k", "before");
        CountDownLatch commitHeld = new CountDownLatch(1);
        CountDownLatch releaseCommit = new CountDownLatch(1);
        List<String> seen = new CopyOnWriteArrayList<>();
        RecordHandler handler = record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8));
        try (KafkaTransport first = KafkaTransport.builder().bootstrapServers(bootstrap).assignmentTimeout(Duration.ZERO)
                .adminFactory(properties -> holdingStartCommits(
                        org.apache.kafka.clients.admin.Admin.create(properties), commitHeld, releaseCommit))
                .build();
             KafkaTransport second = KafkaTransport.builder().bootstrapServers(bootstrap)
                     .assignmentTimeout(Duration.ZERO).build()) {
            CompletableFuture<Subscription> firstSubscribe = CompletableFuture.supplyAsync(
                    () -> first.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler));
            assertTrue(commitHeld.await(WAIT.toSeconds(), TimeUnit.SECONDS));
            send(topic, "k", "during");
            second.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST, handler);
            send(topic, "k", "after");
            releaseCommit.countDown();
            firstSubscribe.get(WAIT.toSeconds(), TimeUnit.SECONDS); // its commit accepted, or refused once a member joined
            send(topic, "k", "last");
            await().atMost(WAIT).until(() -> seen.contains("last"));
            assertFalse(seen.contains("before"), seen.toString());
            assertEquals(1, seen.stream().filter("after"::equals).count(), seen.toString());
            assertTrue(seen.stream().filter("during"::equals).count() <= 1, seen.toString());
        }
    }

    /** {@code admin}, whose commits of a group's offsets wait, once announced, until {@code release}. */
    private static org.apache.kafka.clients.admin.Admin holdingStartCommits(org.apache.kafka.clients.admin.Admin admin,
                                                                          CountDownLatch held, CountDownLatch release) {
        return (org.apache.kafka.clients.admin.Admin) java.lang.reflect.Proxy.newProxyInstance(
                KafkaTransportTest.class.getClassLoader(), new Class<?>[] {org.apache.kafka.clients.admin.Admin.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("alterConsumerGroupOffsets")) {
                        held.countDown();
                        if (!release.await(WAIT.toSeconds(), TimeUnit.SECONDS)) {
                            throw new AssertionError("the commit was never released");
                        }
                    }
                    try {
                        return method.invoke(admin, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test
    void aLatestSubscriptionWhoseWaitForTheAssignmentTimedOutGetsWhatIsPublishedAfterSubscribeReturned() {
        // subscribe waits up to assignmentTimeout for the assignment, then logs a warning and returns; the
        // member, new to the topic at LATEST, then started at the end as of its late assignment, so what was
        // published between subscribe returning and that assignment was never delivered. Here another member
        // of the group that does not poll holds the group's rebalance until it leaves.
        String topic = SharedKafkaBroker.unique("late");
        String group = SharedKafkaBroker.unique("g");
        send(topic, "k", "before");
        List<String> seen = new CopyOnWriteArrayList<>();
        try (KafkaConsumer<String, byte[]> stalled = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer());
             KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                     .assignmentTimeout(Duration.ofMillis(100)).build()) {
            stalled.subscribe(List.of(topic));
            await().atMost(WAIT).until(() -> {
                stalled.poll(Duration.ofMillis(100));
                return !stalled.assignment().isEmpty();
            });
            own.subscribe(group, TopicPattern.of(topic), StartPosition.LATEST,
                    record -> seen.add(new String((byte[]) record.message().payload(), StandardCharsets.UTF_8)));
            KafkaSubscription member = own.subscriptions().iterator().next();
            send(topic, "k", "after");
            stalled.close(); // leaves the group without a commit: the rebalance goes on
            assertTrue(member.awaitAssignment(WAIT));
            send(topic, "k", "last");
            await().atMost(WAIT).until(() -> seen.contains("last"));
            assertEquals(List.of("after", "last"), seen);
        }
    }

    @Test
    void aHandlerThatSubscribesItsGroupThroughAnotherTransportDoesNotWaitForTheAssignment() throws Exception {
        // Two transports over one cluster: a handler of the group's member on one subscribes another member
        // of the group through the other. The group's rebalance waits for the handler's member, which polls
        // again only once the handler returned; the other transport, knowing nothing of that member, waited
        // for the assignment for its whole assignmentTimeout (here 10 minutes).
        String trigger = SharedKafkaBroker.unique("trigger");
        String later = SharedKafkaBroker.unique("later");
        String group = SharedKafkaBroker.unique("g");
        send(later, "k", "before");
        send(trigger, "k", "go");
        List<String> seen = new CopyOnWriteArrayList<>();
        CountDownLatch published = new CountDownLatch(1);
        try (KafkaTransport first = KafkaTransport.builder().bootstrapServers(bootstrap).build();
             KafkaTransport second = KafkaTransport.builder().bootstrapServers(bootstrap)
                     .assignmentTimeout(Duration.ofMinutes(10)).build()) {
            first.subscribe(group, TopicPattern.of(trigger), StartPosition.EARLIEST, record -> {
                second.subscribe(group, TopicPattern.of(later), StartPosition.LATEST,
                        next -> seen.add(new String((byte[]) next.message().payload(), StandardCharsets.UTF_8)));
                send(later, "k", "after"); // published after subscribe returned: delivered
                published.countDown();
            });
            assertTrue(published.await(WAIT.toSeconds(), TimeUnit.SECONDS), "subscribe, called from the handler, returned");
            send(later, "k", "last");
            await().atMost(WAIT).until(() -> seen.contains("last"));
            assertEquals(List.of("after", "last"), seen);
        }
    }

    @Test
    void aSubscribeThatTheTransportsCloseOvertakesLeavesNoMemberRunning() throws Exception {
        // close() "stops every subscription and releases all threads": a subscribe past its closed check while
        // close() ran (here creating its consumer) added and started its member after close had taken the
        // subscriptions to close, so that member polled on, unclosed, after the transport was closed.
        String topic = SharedKafkaBroker.unique("events");
        CountDownLatch creatingConsumer = new CountDownLatch(1);
        CountDownLatch transportClosed = new CountDownLatch(1);
        KafkaTransport closing = KafkaTransport.builder().bootstrapServers(bootstrap)
                .consumerProperty(ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG, PausingInterceptor.class.getName())
                .consumerProperty(PausingInterceptor.CONFIGURED, creatingConsumer)
                .consumerProperty(PausingInterceptor.PROCEED, transportClosed)
                .build();
        CompletableFuture<Subscription> subscribed = CompletableFuture.supplyAsync(() -> closing.subscribe(
                SharedKafkaBroker.unique("late"), TopicPattern.of(topic), StartPosition.EARLIEST, record -> { }));
        try {
            assertTrue(creatingConsumer.await(WAIT.toSeconds(), TimeUnit.SECONDS), "subscribe creates its consumer");
            closing.close();
            transportClosed.countDown();
            ExecutionException refused = assertThrows(ExecutionException.class,
                    () -> subscribed.get(WAIT.toSeconds(), TimeUnit.SECONDS));
            assertInstanceOf(ConfigurationException.class, refused.getCause());
            assertEquals(Set.of(), closing.subscriptions());
        } finally {
            transportClosed.countDown();
            if (!subscribed.isCompletedExceptionally()) {
                subscribed.get(WAIT.toSeconds(), TimeUnit.SECONDS).close();
            }
        }
    }

    /** Signals that a consumer is being created and holds its creation until told to go on. */
    public static final class PausingInterceptor implements ConsumerInterceptor<String, byte[]> {
        static final String CONFIGURED = "test.pausing.configured";
        static final String PROCEED = "test.pausing.proceed";

        @Override
        public void configure(Map<String, ?> configs) {
            ((CountDownLatch) configs.get(CONFIGURED)).countDown();
            try {
                ((CountDownLatch) configs.get(PROCEED)).await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public ConsumerRecords<String, byte[]> onConsume(ConsumerRecords<String, byte[]> records) {
            return records;
        }

        @Override
        public void onCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aStaticGroupInstanceIdDoesNotHaveTwoMembersOfOneGroupFenceEachOther() {
        // consumerProperty: "any consumer property"; static membership is one a production team sets
        KafkaTransport own = KafkaTransport.builder().bootstrapServers(bootstrap)
                .consumerProperty(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "payment-service-1").build();
        String topic = SharedKafkaBroker.unique("static");
        String group = SharedKafkaBroker.unique("payment");
        try {
            List<String> handled = new CopyOnWriteArrayList<>();
            Subscription first = own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                    record -> handled.add(record.message().key()));
            Subscription second = own.subscribe(group, TopicPattern.of(topic), StartPosition.EARLIEST,
                    record -> handled.add(record.message().key()));
            for (int i = 0; i < 6; i++) {
                send(topic, "k" + i, "v" + i);
            }
            await().atMost(WAIT).until(() -> handled.size() >= 6);
            own.subscriptions().forEach(s -> s.awaitAssignment(Duration.ofSeconds(5)));
            assertTrue(first.isActive() && second.isActive(), own.subscriptions().toString());
        } finally {
            own.close();
        }
    }

    @Test
    void aMemberThatKafkaEndsBeforeItsFirstAssignmentFailsSubscribeWithATypedErrorAndLeavesNoSubscription() {
        // Credentials the broker refuses (here SASL against its plaintext listener) fail no client's creation: the
        // member's first poll throws Kafka's AuthenticationException, which ended its thread with an ERROR line,
        // and subscribe returned that dead member as its subscription, isActive() false, the error swallowed.
        try (KafkaTransport refused = KafkaTransport.builder().bootstrapServers(bootstrap)
                .consumerProperty(AdminClientConfig.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT")
                .consumerProperty("sasl.mechanism", "PLAIN")
                .consumerProperty("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule"
                        + " required username=\"payment\" password=\"secret\";")
                .closeTimeout(Duration.ofSeconds(1)).build()) {
            String group = SharedKafkaBroker.unique("payment");
            KafkaTransportException e = assertThrows(KafkaTransportException.class, () -> refused.subscribe(group,
                    TopicPattern.of(SharedKafkaBroker.unique("orders")), StartPosition.EARLIEST, record -> { }));
            assertInstanceOf(org.apache.kafka.common.errors.AuthenticationException.class, e.getCause(), e.toString());
            assertTrue(e.getMessage().contains(group), e.getMessage());
            assertFalse(e.isRetriable(), e.toString());
            assertEquals(Set.of(), refused.subscriptions(), "no member is left");
        }
    }

    /** A "broker" that accepts connections and never answers, so every request waits for its timeout. */
    private static final class SilentBroker implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final List<Socket> accepted = new CopyOnWriteArrayList<>();

        SilentBroker() throws IOException {
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        accepted.add(server.accept()); // kept open, never answered
                    }
                } catch (IOException closed) {
                    // closed by close()
                }
            }, "silent-broker");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        String address() {
            return "127.0.0.1:" + server.getLocalPort();
        }

        int connections() {
            return accepted.size();
        }

        /** Stops listening and drops every connection: the clients see the broker go away. */
        void disconnect() throws IOException {
            server.close();
            for (Socket socket : accepted) {
                socket.close();
            }
        }

        @Override
        public void close() throws IOException {
            disconnect();
        }
    }

    private static void send(String topic, String key, String value) {
        Message message = Message.builder(topic).key(key).type("test").payload(value.getBytes(StandardCharsets.UTF_8)).build();
        transport.send(message).toCompletableFuture().join();
    }

    private static KafkaProducer<String, byte[]> plainProducer() {
        return new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap),
                new StringSerializer(), new ByteArraySerializer());
    }

    private static ConsumerRecord<String, byte[]> readOne(String topic) {
        Map<String, Object> config = Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, SharedKafkaBroker.unique("plain"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config, new StringDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, byte[]>> records = new ArrayList<>();
            await().atMost(WAIT).until(() -> {
                consumer.poll(Duration.ofMillis(100)).forEach(records::add);
                return !records.isEmpty();
            });
            assertEquals(1, records.size());
            return records.get(0);
        }
    }
}
