package io.streamsaga.contract;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transport contract: every {@link Transport}, wrapped in an {@link EventBus}, must pass these tests.
 * A transport module extends this class and implements {@link #createTransport()}.
 *
 * <p>Written for real brokers too: every test uses fresh topic and group names (random suffix), waits for
 * delivery with generous timeouts instead of assuming it is synchronous, and calls {@link #awaitReady}
 * after each subscribe (a Kafka transport waits for its partition assignment there). Tests never depend
 * on each other's data.
 *
 * <p>Lifecycle: the class runs with {@link TestInstance.Lifecycle#PER_CLASS}. By default each test gets a
 * new transport, closed after it; a subclass whose transport is expensive (a broker connection) overrides
 * {@link #transportPerTest()} to return false and shares one transport across the class.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class TransportContractTest {

    /** An event of the contract suite; {@code seq} orders events of one key. */
    public record ContractOrderCreated(String orderId, int seq) {
    }

    /** An event published from inside a handler. */
    public record ContractPaymentProcessed(String orderId) {
    }

    protected static final String ORDER_CREATED = "contract-order-created";
    protected static final String PAYMENT_PROCESSED = "contract-payment-processed";

    private Transport transport;
    private EventBus bus;

    /** A new transport under test. */
    protected abstract Transport createTransport();

    /** Whether each test gets its own transport (default) or the class shares one. */
    protected boolean transportPerTest() {
        return true;
    }

    /** Called after every subscribe, before the test publishes; a broker waits for partition assignment. */
    protected void awaitReady(Subscription subscription) {
    }

    /**
     * Called on each poll while a test waits for deliveries. A transport whose delivery is driven by the
     * caller (the in-memory MANUAL mode) delivers what is pending here; others do nothing.
     */
    protected void pump() {
    }

    /** How long a test waits for a delivery before failing. */
    protected Duration timeout() {
        return Duration.ofSeconds(30);
    }

    /** The bus's configuration; a subclass may add a scheduler, metrics or interceptors. */
    protected EventBus.Builder configureBus(EventBus.Builder builder) {
        return builder;
    }

    /** The types of the suite: order-created v1 and payment-processed v1. */
    protected TypeRegistry types() {
        return TypeRegistry.builder()
                .register(ORDER_CREATED, 1, ContractOrderCreated.class)
                .register(PAYMENT_PROCESSED, 1, ContractPaymentProcessed.class)
                .build();
    }

    /** Fast retries so that dead-lettering does not slow the suite down. */
    protected RetryPolicy fastRetries(int attempts) {
        return RetryPolicy.builder().maxAttempts(attempts).initialBackoff(Duration.ofMillis(1))
                .maxBackoff(Duration.ofMillis(5)).jitter(0).build();
    }

    @BeforeEach
    void openBus() {
        if (transport == null) {
            transport = createTransport();
        }
        bus = configureBus(EventBus.builder(transport).types(types()).retryPolicy(fastRetries(3))).build();
    }

    @AfterEach
    void closeBus() {
        if (bus != null) {
            bus.close();
            bus = null;
        }
        if (transportPerTest() && transport != null) {
            transport.close();
            transport = null;
        }
    }

    @AfterAll
    void closeSharedTransport() {
        if (transport != null) {
            transport.close();
            transport = null;
        }
    }

    /** The transport of the running test. */
    protected Transport transport() {
        return transport;
    }

    /** The bus of the running test. */
    protected EventBus bus() {
        return bus;
    }

    /** A name unique to this test run: {@code base-<random>}. */
    protected static String unique(String base) {
        return base + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /** Waits, pumping, until the assertion holds. */
    protected void eventually(Executable assertion) {
        await().atMost(timeout()).pollInterval(Duration.ofMillis(10)).pollInSameThread()
                .untilAsserted(() -> {
                    pump();
                    try {
                        assertion.execute();
                    } catch (AssertionError | RuntimeException e) {
                        throw e;
                    } catch (Throwable t) {
                        throw new AssertionError(t);
                    }
                });
    }

    private <T> Subscription subscribe(String group, String topic, Class<T> type, SubscriptionOptions options,
                                       io.streamsaga.bus.EventHandler<T> handler) {
        Subscription subscription = bus.subscribe(group, topic, type, options, handler);
        awaitReady(subscription);
        return subscription;
    }

    private void publish(String topic, String key, Object event) {
        bus.publish(topic, key, event).toCompletableFuture().join();
    }

    private Message rawOrder(String topic, String key, String type, int version, byte[] json) {
        return Message.builder(topic).key(key).type(type).version(version).payload(json).build();
    }

    @Test
    void deliversAPublishedEventToASubscriberAtThePositionPublishReturned() {
        String topic = unique("order-created");
        List<ContractOrderCreated> received = new CopyOnWriteArrayList<>();
        List<DeliveryContext> contexts = new CopyOnWriteArrayList<>();
        subscribe(unique("g"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(), (event, ctx) -> {
            received.add(event);
            contexts.add(ctx);
        });
        RecordPosition position = bus.publish(topic, "o-1", new ContractOrderCreated("o-1", 1)).toCompletableFuture().join();
        eventually(() -> assertEquals(List.of(new ContractOrderCreated("o-1", 1)), received));
        DeliveryContext context = contexts.get(0);
        assertEquals(topic, position.topic());
        assertEquals(topic, context.topic());
        assertEquals(position.partition(), context.partition());
        assertEquals(position.offset(), context.offset());
        assertEquals(1, context.attempt());
        assertEquals(ORDER_CREATED, context.message().type());
        assertEquals("o-1", context.message().key());
    }

    @Test
    void sendWithACallbackReportsThePositionTheRecordIsDeliveredAt() {
        String topic = unique("order-created");
        List<Long> delivered = new CopyOnWriteArrayList<>();
        Subscription subscription = transport.subscribe(unique("g"), TopicPattern.of(topic), StartPosition.EARLIEST,
                (TransportRecord record) -> delivered.add(record.offset()));
        awaitReady(subscription);
        try {
            java.util.concurrent.CompletableFuture<RecordPosition> reported = new java.util.concurrent.CompletableFuture<>();
            Message message = Message.builder(topic).key("k").type(ORDER_CREATED)
                    .payload("{\"orderId\":\"o-1\",\"seq\":1}".getBytes(StandardCharsets.UTF_8)).build();
            transport.send(message, (position, error) -> {
                if (error != null) {
                    reported.completeExceptionally(error);
                } else {
                    reported.complete(position);
                }
            });
            RecordPosition position = reported.join();
            assertEquals(topic, position.topic());
            eventually(() -> assertEquals(List.of(position.offset()), delivered));
        } finally {
            subscription.close();
        }
    }

    @Test
    void sendingOnAClosedTransportFailsWithTransportClosedException() {
        Transport closed = createTransport();
        closed.close();
        Message message = Message.builder(unique("order-created")).key("k").type("t")
                .payload("{}".getBytes(StandardCharsets.UTF_8)).build();
        CompletionException e = assertThrows(CompletionException.class, () -> closed.send(message).toCompletableFuture().join());
        assertTrue(e.getCause() instanceof io.streamsaga.bus.TransportClosedException, e.toString());
    }

    @Test
    void publishingAnUnregisteredEventFailsTheReturnedStage() {
        record NotRegistered(String id) {
        }
        CompletionException e = assertThrows(CompletionException.class, () ->
                bus.publish(unique("order-created"), "k", new NotRegistered("x")).toCompletableFuture().join());
        assertTrue(e.getCause() instanceof io.streamsaga.codec.UnknownEventTypeException, e.toString());
    }

    @Test
    void keepsOrderPerKeyWithinATopic() {
        String topic = unique("order-created");
        Map<String, List<Integer>> byKey = new ConcurrentHashMap<>();
        subscribe(unique("g"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (event, ctx) -> byKey.computeIfAbsent(event.orderId(), k -> new CopyOnWriteArrayList<>()).add(event.seq()));
        List<String> keys = List.of("a", "b", "c", "d", "e");
        int perKey = 40;
        for (int seq = 0; seq < perKey; seq++) {
            for (String key : keys) {
                bus.publish(topic, key, new ContractOrderCreated(key, seq));
            }
        }
        List<Integer> expected = new ArrayList<>();
        for (int seq = 0; seq < perKey; seq++) {
            expected.add(seq);
        }
        eventually(() -> {
            for (String key : keys) {
                assertEquals(expected, byKey.get(key), "order of key " + key);
            }
        });
    }

    @Test
    void redeliversARecordUntilTheRecordHandlerReturnsNormally() {
        String topic = unique("order-created");
        publish(topic, "k", new ContractOrderCreated("warm-up", 0));
        List<Long> offsets = new CopyOnWriteArrayList<>();
        List<String> handled = new CopyOnWriteArrayList<>();
        AtomicInteger failuresLeft = new AtomicInteger(2);
        Subscription subscription = transport.subscribe(unique("g"), TopicPattern.of(topic), StartPosition.LATEST,
                (TransportRecord record) -> {
                    offsets.add(record.offset());
                    if (failuresLeft.getAndDecrement() > 0) {
                        throw new IllegalStateException("not yet");
                    }
                    handled.add(record.message().id());
                });
        awaitReady(subscription);
        try {
            Message first = Message.builder(topic).key("k").type(ORDER_CREATED)
                    .payload("{\"orderId\":\"o-1\",\"seq\":1}".getBytes(StandardCharsets.UTF_8)).build();
            Message second = first.toBuilder().id(UUID.randomUUID().toString()).build();
            transport.send(first).toCompletableFuture().join();
            transport.send(second).toCompletableFuture().join();
            eventually(() -> assertEquals(List.of(first.id(), second.id()), handled));
            // The first record was offered three times at the same offset before the second one came.
            assertEquals(4, offsets.size(), "deliveries: " + offsets);
            assertEquals(offsets.get(0), offsets.get(1));
            assertEquals(offsets.get(0), offsets.get(2));
            assertNotEquals(offsets.get(0), offsets.get(3));
        } finally {
            subscription.close();
        }
    }

    @Test
    void failingHandlerIsRetriedThenDeadLetteredWithTheErrorInHeaders() {
        String topic = unique("order-created");
        List<DeliveryContext> attempts = new CopyOnWriteArrayList<>();
        subscribe(unique("payment"), topic, ContractOrderCreated.class,
                SubscriptionOptions.defaults().withRetryPolicy(fastRetries(3)), (event, ctx) -> {
                    attempts.add(ctx);
                    throw new IllegalStateException("card declined for " + event.orderId());
                });
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        List<ContractOrderCreated> deadEvents = new CopyOnWriteArrayList<>();
        subscribe(unique("ops"), topic + MessageHeaders.DEAD_LETTER_SUFFIX, Message.class,
                SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message));
        subscribe(unique("ops-typed"), topic + MessageHeaders.DEAD_LETTER_SUFFIX, ContractOrderCreated.class,
                SubscriptionOptions.fromEarliest(), (event, ctx) -> deadEvents.add(event));

        publish(topic, "o-9", new ContractOrderCreated("o-9", 1));

        eventually(() -> assertEquals(1, deadLetters.size()));
        assertEquals(List.of(1, 2, 3), attempts.stream().map(DeliveryContext::attempt).toList());
        DeliveryContext last = attempts.get(2);
        Message dead = deadLetters.get(0);
        assertEquals(IllegalStateException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("card declined for o-9", dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
        assertEquals(topic, dead.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow());
        assertEquals(Integer.toString(last.partition()), dead.header(MessageHeaders.DLT_ORIGINAL_PARTITION).orElseThrow());
        assertEquals(Long.toString(last.offset()), dead.header(MessageHeaders.DLT_ORIGINAL_OFFSET).orElseThrow());
        assertEquals("3", dead.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
        assertEquals("handler-failed", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals(ORDER_CREATED, dead.type());
        assertEquals("o-9", dead.key());
        // The dead letter still carries the event: an operator can read it and publish it again.
        eventually(() -> assertEquals(List.of(new ContractOrderCreated("o-9", 1)), deadEvents));
    }

    @Test
    void oneBadMessageDoesNotStopTheConsumer() {
        String topic = unique("order-created");
        List<Integer> handled = new CopyOnWriteArrayList<>();
        subscribe(unique("g"), topic, ContractOrderCreated.class,
                SubscriptionOptions.defaults().withRetryPolicy(fastRetries(2)), (event, ctx) -> {
                    if (event.orderId().equals("poison")) {
                        throw new IllegalArgumentException("poison");
                    }
                    handled.add(event.seq());
                });
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        subscribe(unique("ops"), topic + MessageHeaders.DEAD_LETTER_SUFFIX, Message.class,
                SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message));
        publish(topic, "same-key", new ContractOrderCreated("ok", 1));
        publish(topic, "same-key", new ContractOrderCreated("poison", 2));
        publish(topic, "same-key", new ContractOrderCreated("ok", 3));
        publish(topic, "same-key", new ContractOrderCreated("ok", 4));
        eventually(() -> assertEquals(List.of(1, 3, 4), handled));
        eventually(() -> assertEquals(1, deadLetters.size()));
    }

    @Test
    void wildcardPatternsMatchTopicsButNeverDeadLetterTopics() {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String created = "order-created-" + suffix;
        String paid = "order-paid-" + suffix;
        String payment = "payment-processed-" + suffix;
        String deadLetterTopic = created + MessageHeaders.DEAD_LETTER_SUFFIX;
        // Topics exist before the wildcard subscriptions, which read from the earliest offset.
        publish(created, "k", new ContractOrderCreated("created", 1));
        publish(paid, "k", new ContractOrderCreated("paid", 1));
        publish(payment, "k", new ContractOrderCreated("payment", 1));
        publish(deadLetterTopic, "k", new ContractOrderCreated("dead", 1));

        Set<String> allTopics = ConcurrentHashMap.newKeySet();
        Set<String> orderTopics = ConcurrentHashMap.newKeySet();
        // On a shared broker '*' also sees other tests' topics: keep only ours.
        subscribe(unique("all"), "*", Message.class, SubscriptionOptions.fromEarliest(), (message, ctx) -> {
            if (ctx.topic().contains(suffix)) {
                allTopics.add(ctx.topic());
            }
        });
        subscribe(unique("orders"), "order-*", Message.class, SubscriptionOptions.fromEarliest(), (message, ctx) -> {
            if (ctx.topic().contains(suffix)) {
                orderTopics.add(ctx.topic());
            }
        });
        Set<String> exactDead = ConcurrentHashMap.newKeySet();
        subscribe(unique("ops"), deadLetterTopic, Message.class, SubscriptionOptions.fromEarliest(),
                (message, ctx) -> exactDead.add(ctx.topic()));

        eventually(() -> assertEquals(Set.of(created, paid, payment), allTopics));
        eventually(() -> assertEquals(Set.of(created, paid), orderTopics));
        eventually(() -> assertEquals(Set.of(deadLetterTopic), exactDead));
        assertFalse(allTopics.contains(deadLetterTopic));
        assertFalse(orderTopics.contains(deadLetterTopic));
    }

    @Test
    void wildcardSubscriptionPicksUpTopicsCreatedAfterIt() {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        List<ContractOrderCreated> received = new CopyOnWriteArrayList<>();
        subscribe(unique("g"), "late-" + suffix + "-*", ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (event, ctx) -> received.add(event));
        publish("late-" + suffix + "-orders", "k", new ContractOrderCreated("late", 1));
        eventually(() -> assertEquals(List.of(new ContractOrderCreated("late", 1)), received));
    }

    @Test
    void independentGroupsEachReceiveEveryMessage() {
        String topic = unique("order-created");
        Set<Integer> payment = ConcurrentHashMap.newKeySet();
        Set<Integer> inventory = ConcurrentHashMap.newKeySet();
        Set<Integer> analytics = ConcurrentHashMap.newKeySet();
        subscribe(unique("payment"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(), (e, c) -> payment.add(e.seq()));
        subscribe(unique("inventory"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(), (e, c) -> inventory.add(e.seq()));
        subscribe(unique("analytics"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(), (e, c) -> analytics.add(e.seq()));
        Set<Integer> expected = new HashSet<>();
        for (int i = 0; i < 30; i++) {
            publish(topic, "k" + i, new ContractOrderCreated("o" + i, i));
            expected.add(i);
        }
        eventually(() -> {
            assertEquals(expected, payment);
            assertEquals(expected, inventory);
            assertEquals(expected, analytics);
        });
    }

    @Test
    void membersOfOneGroupShareTheMessagesEachDeliveredOnce() {
        String topic = unique("order-created");
        String group = unique("workers");
        List<Integer> first = new CopyOnWriteArrayList<>();
        List<Integer> second = new CopyOnWriteArrayList<>();
        Subscription one = subscribe(group, topic, ContractOrderCreated.class, SubscriptionOptions.fromEarliest(),
                (e, c) -> first.add(e.seq()));
        Subscription two = subscribe(group, topic, ContractOrderCreated.class, SubscriptionOptions.fromEarliest(),
                (e, c) -> second.add(e.seq()));
        // A broker may finish the rebalance for the second member only now; wait for the first again.
        awaitReady(one);
        int count = 60;
        for (int i = 0; i < count; i++) {
            publish(topic, "key-" + i, new ContractOrderCreated("o" + i, i));
        }
        eventually(() -> assertEquals(count, first.size() + second.size()));
        Set<Integer> union = new HashSet<>(first);
        union.addAll(second);
        assertEquals(count, union.size(), "each message once per group: " + first + " / " + second);

        // When one member leaves, the other takes over its partitions.
        two.close();
        awaitReady(one);
        for (int i = count; i < count + 20; i++) {
            publish(topic, "key-" + i, new ContractOrderCreated("o" + i, i));
        }
        eventually(() -> {
            Set<Integer> seen = new HashSet<>(first);
            seen.addAll(second);
            assertEquals(count + 20, seen.size());
        });
        for (int i = count; i < count + 20; i++) {
            assertTrue(first.contains(i), "remaining member handles " + i);
        }
    }

    @Test
    void aNewGroupCanReplayFromTheEarliestOffset() {
        String topic = unique("order-created");
        for (int i = 0; i < 5; i++) {
            publish(topic, "k", new ContractOrderCreated("o", i));
        }
        List<Integer> replayed = new CopyOnWriteArrayList<>();
        subscribe(unique("replay"), topic, ContractOrderCreated.class, SubscriptionOptions.fromEarliest(),
                (e, c) -> replayed.add(e.seq()));
        eventually(() -> assertEquals(List.of(0, 1, 2, 3, 4), replayed));
    }

    @Test
    void aNewGroupStartingAtLatestSkipsOlderMessages() {
        String topic = unique("order-created");
        for (int i = 0; i < 5; i++) {
            publish(topic, "k", new ContractOrderCreated("old", i));
        }
        List<Integer> received = new CopyOnWriteArrayList<>();
        subscribe(unique("late"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (e, c) -> received.add(e.seq()));
        publish(topic, "k", new ContractOrderCreated("new", 5));
        // Same key, so an old message, had it been delivered, would have come before the new one.
        eventually(() -> assertEquals(List.of(5), received));
    }

    @Test
    void aGroupResumesFromItsCommittedOffsetAfterResubscribing() {
        String topic = unique("order-created");
        String group = unique("billing");
        List<Integer> received = new CopyOnWriteArrayList<>();
        Subscription first = subscribe(group, topic, ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (e, c) -> received.add(e.seq()));
        for (int i = 0; i < 3; i++) {
            publish(topic, "k", new ContractOrderCreated("o", i));
        }
        eventually(() -> assertEquals(List.of(0, 1, 2), received));
        first.close();
        assertFalse(first.isActive());
        // Offsets of a fresh topic start at 0 on every transport: three handled records, three committed.
        eventually(() -> assertEquals(3L, transport.committedOffsets(group, topic).values().stream()
                .mapToLong(Long::longValue).sum()));
        assertTrue(transport.consumerGroups(topic).contains(group));

        publish(topic, "k", new ContractOrderCreated("o", 3));
        publish(topic, "k", new ContractOrderCreated("o", 4));
        // LATEST applies only to a group with no committed position: this one resumes where it stopped.
        subscribe(group, topic, ContractOrderCreated.class, SubscriptionOptions.defaults(), (e, c) -> received.add(e.seq()));
        eventually(() -> assertEquals(List.of(0, 1, 2, 3, 4), received));
    }

    @Test
    void publishingInsideAHandlerPropagatesCorrelationSagaIdAndTraceparentAndSetsCausation() {
        String orders = unique("order-created");
        String payments = unique("payment-processed");
        subscribe(unique("payment"), orders, ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (event, ctx) -> bus.publish(payments, event.orderId(), new ContractPaymentProcessed(event.orderId()))
                        .toCompletableFuture().join());
        List<Message> received = new CopyOnWriteArrayList<>();
        subscribe(unique("audit"), payments, Message.class, SubscriptionOptions.defaults(), (m, ctx) -> received.add(m));
        List<Message> originals = new CopyOnWriteArrayList<>();
        subscribe(unique("audit-orders"), orders, Message.class, SubscriptionOptions.defaults(), (m, ctx) -> originals.add(m));

        String traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        bus.publish(orders, "o-1", new ContractOrderCreated("o-1", 1), Map.of(
                MessageHeaders.CORRELATION_ID, "corr-42",
                MessageHeaders.SAGA_ID, "saga-7",
                MessageHeaders.TRACEPARENT, traceparent)).toCompletableFuture().join();

        eventually(() -> assertEquals(1, received.size()));
        eventually(() -> assertEquals(1, originals.size()));
        Message payment = received.get(0);
        assertEquals("corr-42", payment.correlationId().orElseThrow());
        assertEquals("saga-7", payment.sagaId().orElseThrow());
        assertEquals(traceparent, payment.header(MessageHeaders.TRACEPARENT).orElseThrow());
        assertEquals(originals.get(0).id(), payment.causationId().orElseThrow());
        assertEquals(PAYMENT_PROCESSED, payment.type());
        assertEquals(1, payment.version());
    }

    @Test
    void aMessagePublishedOutsideAHandlerStartsItsOwnCorrelation() {
        String topic = unique("order-created");
        List<Message> received = new CopyOnWriteArrayList<>();
        subscribe(unique("audit"), topic, Message.class, SubscriptionOptions.defaults(), (m, ctx) -> received.add(m));
        publish(topic, "o-1", new ContractOrderCreated("o-1", 1));
        eventually(() -> assertEquals(1, received.size()));
        Message message = received.get(0);
        assertEquals(message.id(), message.correlationId().orElseThrow());
        assertTrue(message.causationId().isEmpty());
    }

    @Test
    void undecodableMessagesAreDeadLetteredWithAReasonAndTheConsumerKeepsGoing() {
        String topic = unique("order-created");
        List<String> handled = new CopyOnWriteArrayList<>();
        subscribe(unique("g"), topic, ContractOrderCreated.class, SubscriptionOptions.defaults(),
                (event, ctx) -> handled.add(event.orderId()));
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        subscribe(unique("ops"), topic + MessageHeaders.DEAD_LETTER_SUFFIX, Message.class,
                SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message));

        byte[] valid = "{\"orderId\":\"x\",\"seq\":1}".getBytes(StandardCharsets.UTF_8);
        Message malformed = rawOrder(topic, "k", ORDER_CREATED, 1, "{\"orderId\": oops".getBytes(StandardCharsets.UTF_8));
        Message unknownType = rawOrder(topic, "k", "no-such-event", 1, valid);
        Message unknownVersion = rawOrder(topic, "k", ORDER_CREATED, 7, valid);
        transport.send(malformed).toCompletableFuture().join();
        publish(topic, "k", new ContractOrderCreated("after-malformed", 1));
        transport.send(unknownType).toCompletableFuture().join();
        publish(topic, "k", new ContractOrderCreated("after-unknown-type", 2));
        transport.send(unknownVersion).toCompletableFuture().join();
        publish(topic, "k", new ContractOrderCreated("after-unknown-version", 3));

        eventually(() -> assertEquals(List.of("after-malformed", "after-unknown-type", "after-unknown-version"), handled));
        eventually(() -> assertEquals(3, deadLetters.size()));
        Map<String, Message> byOriginalId = deadLetters.stream().collect(Collectors.toMap(
                m -> m.causationId().orElseThrow(), m -> m));
        for (Message original : List.of(malformed, unknownType, unknownVersion)) {
            Message dead = byOriginalId.get(original.id());
            assertTrue(dead != null, "dead letter for " + original);
            assertEquals("undecodable", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
            assertEquals(topic, dead.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow());
            assertFalse(dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElse("").isBlank());
            assertTrue(dead.header(MessageHeaders.DLT_ORIGINAL_OFFSET).isPresent());
        }
        assertTrue(byOriginalId.get(malformed.id()).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow()
                .contains("malformed JSON"));
        assertTrue(byOriginalId.get(unknownType.id()).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow()
                .contains("no-such-event"));
        assertTrue(byOriginalId.get(unknownVersion.id()).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow()
                .contains("version 7"));
        // The malformed bytes are kept as they were, so nothing is lost.
        Message deadMalformed = byOriginalId.get(malformed.id());
        assertEquals("{\"orderId\": oops", new String(bytesOf(deadMalformed.payload()), StandardCharsets.UTF_8));
    }

    private static byte[] bytesOf(Object payload) {
        if (payload instanceof byte[] bytes) {
            return bytes;
        }
        throw new AssertionError("expected the raw bytes, but the payload was " + payload);
    }

    @Test
    void jsonTreeHandlersReceiveThePayloadAsJson() {
        String topic = unique("order-created");
        List<JsonNode> received = new CopyOnWriteArrayList<>();
        subscribe(unique("g"), topic, JsonNode.class, SubscriptionOptions.defaults(), (tree, ctx) -> received.add(tree));
        publish(topic, "k", new ContractOrderCreated("o-5", 5));
        eventually(() -> assertEquals(1, received.size()));
        assertEquals("o-5", received.get(0).get("orderId").asText());
        assertEquals(5, received.get(0).get("seq").asInt());
    }

    @Test
    void closingASubscriptionStopsDelivery() {
        String topic = unique("order-created");
        List<Integer> closedOne = new CopyOnWriteArrayList<>();
        Subscription subscription = subscribe(unique("g"), topic, ContractOrderCreated.class,
                SubscriptionOptions.defaults(), (e, c) -> closedOne.add(e.seq()));
        publish(topic, "k", new ContractOrderCreated("o", 1));
        eventually(() -> assertEquals(List.of(1), closedOne));
        subscription.close();
        assertFalse(subscription.isActive());

        publish(topic, "k", new ContractOrderCreated("o", 2));
        publish(topic, "k", new ContractOrderCreated("o", 3));
        // A probe group that reads everything shows the later messages were there to be delivered.
        List<Integer> probe = new CopyOnWriteArrayList<>();
        subscribe(unique("probe"), topic, ContractOrderCreated.class, SubscriptionOptions.fromEarliest(),
                (e, c) -> probe.add(e.seq()));
        eventually(() -> assertEquals(List.of(1, 2, 3), probe));
        assertEquals(List.of(1), closedOne);
    }

    @Test
    void closingTheBusClosesItsSubscriptions() {
        Subscription subscription = subscribe(unique("g"), unique("order-created"), ContractOrderCreated.class,
                SubscriptionOptions.defaults(), (e, c) -> { });
        assertTrue(subscription.isActive());
        bus.close();
        assertFalse(subscription.isActive());
    }
}
