package io.streamsaga.kafka;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupReleaser;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowStatus;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.inmemory.patterns.InMemoryPayloadStore;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.routing.EventRouter;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SplitPart;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

import static io.streamsaga.kafka.ExactlyOnceTest.header;
import static io.streamsaga.kafka.ExactlyOnceTest.readAll;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stream patterns of docs/patterns.md on Kafka in exactly-once mode (docs/kafka.md), as an application runs them:
 * each poll batch is one transaction, which aborts as a whole when any of its records fails an attempt (the bus's
 * retry between attempts, an {@code Error}, a crash), and is then handled again from its first record. The records
 * before the failing one are in the log before the group's first poll, on one key, so they come in one batch.
 */
class KafkaExactlyOncePatternsTest {
    record OrderCreated(String orderId) {
    }

    record PaymentProcessed(String orderId) {
    }

    record OrderCompleted(String orderId, int parts) {
    }

    record OrderItem(String orderId, int item) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final SubscriptionOptions FROM_EARLIEST = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
    /** A failed attempt is retried at once (in the next transaction), up to three attempts. */
    private static final RetryPolicy THREE_ATTEMPTS = RetryPolicy.builder().maxAttempts(3).noBackoff().build();

    private static KafkaTransport kafka;

    @BeforeAll
    static void start() {
        kafka = exactlyOnceTransport(SharedKafkaBroker.unique("eos-patterns")).build();
    }

    @AfterAll
    static void stop() {
        kafka.close();
    }

    private static KafkaTransport.Builder exactlyOnceTransport(String prefix) {
        return KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(prefix)
                .redeliveryBackoff(Duration.ofMillis(100))
                .closeTimeout(Duration.ofSeconds(5));
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("order-created", 1, OrderCreated.class)
                .register("payment-processed", 1, PaymentProcessed.class)
                .register("order-completed", 1, OrderCompleted.class)
                .register("order-item-created", 1, OrderItem.class)
                .build();
    }

    private static EventBus bus(KafkaTransport transport) {
        return EventBus.builder(transport).types(types()).retryPolicy(THREE_ATTEMPTS).build();
    }

    private static void createTopics(String... topics) throws Exception {
        SharedKafkaBroker.createTopics(1, topics);
    }

    /** A releaser that publishes the group's key and size to {@code topic} (in the part's transaction). */
    private static GroupReleaser publishTo(EventBus bus, String topic) {
        return aggregate -> bus.publish(topic, aggregate.key(), new OrderCompleted(aggregate.key(), aggregate.group().size()))
                .toCompletableFuture().join();
    }

    private static long committed(KafkaTransport transport, String group, String topic) {
        return transport.committedOffsets(group, topic).values().stream().mapToLong(Long::longValue).sum();
    }

    /** The keys of the records a read_committed reader sees on {@code topic}, sorted. */
    private static List<String> committedKeys(String topic) {
        return readAll(SharedKafkaBroker.bootstrapServers(), topic, "read_committed").stream()
                .map(ConsumerRecord::key).sorted().toList();
    }

    private static Message notJson(String topic, String key) {
        return Message.builder(topic).key(key).type("order-created")
                .payload("not json".getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void anIdempotentConsumersOutputOfARecordWhoseBatchAbortedForALaterRecordIsCommittedOnce() throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("billing");
        createTopics(orders, payments, orders + ".DLT");
        AtomicInteger flakyAttempts = new AtomicInteger();
        try (EventBus bus = bus(kafka)) {
            IdempotentConsumer idempotent = IdempotentConsumer.builder(bus, InMemoryDeduplicationStore.builder().build()).build();
            bus.publish(orders, "k", new OrderCreated("o-1")).toCompletableFuture().join();
            // the same message sent twice by a producer that retried (one id): in the same batch, and its transaction
            Message twice = Message.builder(orders).id("resent-o-2").key("k").type("order-created")
                    .payload("{\"orderId\":\"o-2\"}".getBytes(StandardCharsets.UTF_8)).build();
            kafka.send(twice).toCompletableFuture().join();
            kafka.send(twice).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("flaky")).toCompletableFuture().join();
            try (Subscription billing = bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST,
                    idempotent.wrap((order, ctx) -> {
                        bus.publish(payments, order.orderId(), new PaymentProcessed(order.orderId())).toCompletableFuture().join();
                        if (order.orderId().equals("flaky") && flakyAttempts.incrementAndGet() == 1) {
                            throw new IllegalStateException("a downstream service is down for a moment");
                        }
                    }))) {
                await().atMost(WAIT).until(() -> committed(kafka, group, orders) == 4);
            }
        }
        assertEquals(List.of("flaky", "o-1", "o-2"), committedKeys(payments), "each order's payment, once");
        assertEquals(List.of(), committedKeys(orders + ".DLT"), "the duplicate is skipped, not dead-lettered");
        assertEquals(2, flakyAttempts.get());
    }

    @Test
    void aClaimCheckedRecordWhoseBatchAbortedForALaterRecordIsHandledAgainWithItsPayload() throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("billing");
        createTopics(orders, payments, orders + ".DLT");
        String bigId = "o-" + "x".repeat(4096); // over the claim check's threshold below
        AtomicInteger flakyAttempts = new AtomicInteger();
        try (ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(new InMemoryPayloadStore(), kafka)
                .threshold(1024).build();
             EventBus bus = EventBus.builder(kafka).types(types()).retryPolicy(THREE_ATTEMPTS).interceptor(claimCheck).build()) {
            bus.publish(orders, "k", new OrderCreated(bigId)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("flaky")).toCompletableFuture().join();
            try (Subscription billing = bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (order, ctx) -> {
                bus.publish(payments, order.orderId().substring(0, Math.min(8, order.orderId().length())),
                        new PaymentProcessed("paid")).toCompletableFuture().join();
                if (order.orderId().equals("flaky") && flakyAttempts.incrementAndGet() == 1) {
                    throw new IllegalStateException("a downstream service is down for a moment");
                }
            })) {
                await().atMost(WAIT).until(() -> committed(kafka, group, orders) == 2);
            }
        }
        assertEquals(List.of(), committedKeys(orders + ".DLT"), "nothing dead-lettered");
        assertEquals(List.of("flaky", "o-xxxxxx"), committedKeys(payments), "each order's payment, once");
    }

    @Test
    void anAggregatorsReleaseInABatchThatAbortedForALaterGroupsFailedReleaseIsCommittedOnce() throws Exception {
        String parts = SharedKafkaBroker.unique("order-parts");
        String completed = SharedKafkaBroker.unique("order-completed");
        String group = SharedKafkaBroker.unique("order-aggregator");
        createTopics(parts, completed);
        AtomicInteger g2Releases = new AtomicInteger();
        try (EventBus bus = bus(kafka);
             EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                     .name("pairs").correlateByField("orderId").completeOnSize(2)
                     .onRelease(aggregate -> {
                         bus.publish(completed, aggregate.key(), new OrderCompleted(aggregate.key(), aggregate.group().size()))
                                 .toCompletableFuture().join();
                         if (aggregate.key().equals("g-2") && g2Releases.incrementAndGet() == 1) {
                             throw new IllegalStateException("the release's downstream service is down for a moment");
                         }
                     })
                     .build()) {
            bus.publish(parts, "k", new OrderCreated("g-1")).toCompletableFuture().join();
            bus.publish(parts, "k", new PaymentProcessed("g-1")).toCompletableFuture().join();
            bus.publish(parts, "k", new OrderCreated("g-2")).toCompletableFuture().join();
            bus.publish(parts, "k", new PaymentProcessed("g-2")).toCompletableFuture().join();
            aggregator.subscribe(group, FROM_EARLIEST, parts);
            await().atMost(WAIT).until(() -> committed(kafka, group, parts) == 4);
        }
        assertEquals(List.of("g-1", "g-2"), committedKeys(completed), "each group's release, once");
    }

    @Test
    void anAggregatorDeadLettersAPoisonAndALatePartWithTheirPayloadsOnceAndReleasesTheGroupOnce() throws Exception {
        String parts = SharedKafkaBroker.unique("order-parts");
        String completed = SharedKafkaBroker.unique("order-completed");
        String group = SharedKafkaBroker.unique("order-aggregator");
        createTopics(parts, completed, parts + ".DLT");
        try (EventBus bus = bus(kafka);
             EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                     .name("pairs").correlateByField("orderId").completeOnSize(2)
                     .onRelease(publishTo(bus, completed))
                     .build()) {
            bus.publish(parts, "g-1", new OrderCreated("g-1")).toCompletableFuture().join();
            kafka.send(notJson(parts, "g-1")).toCompletableFuture().join();
            bus.publish(parts, "g-1", new PaymentProcessed("g-1")).toCompletableFuture().join();
            bus.publish(parts, "g-1", new OrderCreated("g-1")).toCompletableFuture().join(); // late: the pair is released
            aggregator.subscribe(group, FROM_EARLIEST, parts);
            await().atMost(WAIT).until(() -> committed(kafka, group, parts) == 4);
        }
        assertEquals(List.of("g-1"), committedKeys(completed));
        assertTrue(new String(readAll(SharedKafkaBroker.bootstrapServers(), completed, "read_committed").get(0).value(),
                StandardCharsets.UTF_8).contains("\"parts\":2"), "released whole");
        List<ConsumerRecord<String, byte[]>> deadLetters = readAll(SharedKafkaBroker.bootstrapServers(), parts + ".DLT", "read_committed");
        assertEquals(List.of("1:DecodingException:not json", "3:AggregationException:{\"orderId\":\"g-1\"}"),
                deadLetters.stream().map(r -> header(r, "dlt-original-offset") + ":"
                        + header(r, "dlt-error-class").replaceAll(".*\\.", "") + ":"
                        + new String(r.value(), StandardCharsets.UTF_8)).toList());
    }

    @Test
    void aGroupReleasedPartialByItsDeadlineWhileABatchHoldingItsPartAbortsIsReleasedOnceAndItsLatePartDeadLetteredOnce()
            throws Exception {
        TimeoutOutcome outcome = timeoutDuringAbortingBatches(TimeoutPolicy.RELEASE_PARTIAL);

        assertEquals(List.of("g:1", "h:2", "i:2"), outcome.releases(), "g's partial release and h's and i's, each once");
        assertEquals(List.of("3:handler-failed:AggregationException"), outcome.deadLetters(),
                "g's part redelivered after the timeout is no late part; its late part is dead-lettered once");
    }

    @Test
    void aGroupDeadLetteredByItsDeadlineWhileABatchHoldingItsPartAbortsHasEachPartDeadLetteredOnce() throws Exception {
        TimeoutOutcome outcome = timeoutDuringAbortingBatches(TimeoutPolicy.DEAD_LETTER);

        assertEquals(List.of("h:2", "i:2"), outcome.releases(), "g is never released");
        assertEquals(List.of("0:aggregation-timeout:" + outcome.parts(), "3:handler-failed:AggregationException"),
                outcome.deadLetters(),
                "g's timed-out part once (not again when its aborted batch brings it back), its late part once");
    }

    /**
     * What {@link #timeoutDuringAbortingBatches} committed: the releases on the output topic as key:parts, and the
     * dead letters of the parts' topic {@code parts} as (the original's offset):reason:(error class, or the original
     * topic of a timeout's), each sorted.
     */
    private record TimeoutOutcome(String parts, List<String> releases, List<String> deadLetters) {
    }

    /**
     * The timeouts of docs/patterns.md section 4 in exactly-once mode, on a virtual clock: one batch holds (offsets 0
     * to 5) g's first part, h's two parts, g's second part, and i's two parts. g's deadline passes (the test moves the
     * clock) while h's releaser, in the batch's transaction, is running; the timeout's outcome is sent at once, outside
     * any transaction. h's releaser then fails its first attempt, which aborts the batch: g's first part comes back to
     * a group the timeout closed. In the batch handled again g's second part is late, dead-lettered in the batch's
     * transaction, and i's releaser fails its first attempt, which aborts the batch again; the third attempt commits.
     */
    private static TimeoutOutcome timeoutDuringAbortingBatches(TimeoutPolicy policy) throws Exception {
        String parts = SharedKafkaBroker.unique("order-parts");
        String completed = SharedKafkaBroker.unique("order-completed");
        String group = SharedKafkaBroker.unique("order-aggregator");
        createTopics(parts, completed, parts + ".DLT");
        VirtualScheduler clock = new VirtualScheduler();
        CountDownLatch releasingH = new CountDownLatch(1);
        CountDownLatch timedOut = new CountDownLatch(1);
        Map<String, AtomicInteger> attempts = new ConcurrentHashMap<>();
        try (EventBus bus = EventBus.builder(kafka).types(types()).retryPolicy(THREE_ATTEMPTS).scheduler(clock).build();
             EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                     .name("pairs").correlateByField("orderId").completeOnSize(2)
                     .timeout(Duration.ofMinutes(15), policy)
                     .releaseLease(Duration.ofHours(1)) // h's lease does not run out when the clock moves
                     .onRelease(aggregate -> {
                         publishTo(bus, completed).release(aggregate);
                         int attempt = attempts.computeIfAbsent(aggregate.key(), k -> new AtomicInteger()).incrementAndGet();
                         if (aggregate.key().equals("h") && attempt == 1) {
                             releasingH.countDown();
                             assertTrue(timedOut.await(60, TimeUnit.SECONDS));
                             throw new IllegalStateException("h's downstream service is down for a moment");
                         }
                         if (aggregate.key().equals("i") && attempt == 1) {
                             throw new IllegalStateException("i's downstream service is down for a moment");
                         }
                     })
                     .build()) {
            bus.publish(parts, "k", new OrderCreated("g")).toCompletableFuture().join();
            bus.publish(parts, "k", new OrderCreated("h")).toCompletableFuture().join();
            bus.publish(parts, "k", new PaymentProcessed("h")).toCompletableFuture().join();
            bus.publish(parts, "k", new PaymentProcessed("g")).toCompletableFuture().join(); // late once g timed out
            bus.publish(parts, "k", new OrderCreated("i")).toCompletableFuture().join();
            bus.publish(parts, "k", new PaymentProcessed("i")).toCompletableFuture().join();
            aggregator.subscribe(group, FROM_EARLIEST, parts);
            assertTrue(releasingH.await(60, TimeUnit.SECONDS), "the batch's transaction is open, h releasing");
            clock.advance(Duration.ofMinutes(15)); // g's deadline: its outcome runs here, on the test's thread
            GroupState closed = policy == TimeoutPolicy.RELEASE_PARTIAL
                    ? GroupState.TIMED_OUT_RELEASED : GroupState.TIMED_OUT_DEAD_LETTERED;
            assertEquals(closed, aggregator.group("g").orElseThrow().state());
            timedOut.countDown();
            await().atMost(WAIT).until(() -> committed(kafka, group, parts) == 6);
            assertEquals(closed, aggregator.group("g").orElseThrow().state());
            assertEquals(GroupState.COMPLETED, aggregator.group("h").orElseThrow().state());
            assertEquals(GroupState.COMPLETED, aggregator.group("i").orElseThrow().state());
        }
        assertNoTransactionLeftOpen(completed, parts + ".DLT");
        List<String> releases = readAll(SharedKafkaBroker.bootstrapServers(), completed, "read_committed").stream()
                .map(r -> r.key() + ":" + new String(r.value(), StandardCharsets.UTF_8).replaceAll(".*\"parts\":(\\d+).*", "$1"))
                .sorted().toList();
        // a timeout's dead letter names its part by message id (the group keeps no offsets): the offset it has there
        Map<String, Long> offsetOfId = readAll(SharedKafkaBroker.bootstrapServers(), parts, "read_committed").stream()
                .collect(Collectors.toMap(r -> header(r, "message-id"), ConsumerRecord::offset));
        List<String> deadLetters = readAll(SharedKafkaBroker.bootstrapServers(), parts + ".DLT", "read_committed").stream()
                .map(r -> (header(r, "dlt-original-offset") != null ? header(r, "dlt-original-offset")
                        : offsetOfId.get(header(r, "dlt-original-message-id"))) + ":" + header(r, "dlt-reason") + ":"
                        + (header(r, "dlt-reason").equals("handler-failed")
                        ? header(r, "dlt-error-class").replaceAll(".*\\.", "") : header(r, "dlt-original-topic")))
                .sorted().toList();
        return new TimeoutOutcome(parts, releases, deadLetters);
    }

    @Test
    void aSplitRetriedAfterItsBatchAbortedIsAggregatedOnceWithEveryPart() throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String items = SharedKafkaBroker.unique("order-item-created");
        String completed = SharedKafkaBroker.unique("order-completed");
        String splitterGroup = SharedKafkaBroker.unique("splitter");
        String aggregatorGroup = SharedKafkaBroker.unique("assembler");
        createTopics(orders, items, completed);
        AtomicInteger failures = new AtomicInteger();
        try (EventBus bus = bus(kafka);
             EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                     .name("assembler").completeOnSequenceEnd()
                     .onRelease(publishTo(bus, completed))
                     .build()) {
            EventSplitter splitter = EventSplitter.of(bus);
            bus.publish(orders, "k", new OrderCreated("o-1")).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("o-2")).toCompletableFuture().join();
            aggregator.subscribe(aggregatorGroup, FROM_EARLIEST, items);
            try (Subscription splitting = bus.subscribe(splitterGroup, orders, OrderCreated.class, FROM_EARLIEST, (order, ctx) -> {
                splitter.split(order.orderId(), List.of(
                        new SplitPart(items, order.orderId(), new OrderItem(order.orderId(), 1)),
                        new SplitPart(items, order.orderId(), new OrderItem(order.orderId(), 2)),
                        new SplitPart(items, order.orderId(), new OrderItem(order.orderId(), 3)))).toCompletableFuture().join();
                if (order.orderId().equals("o-2") && failures.incrementAndGet() == 1) {
                    throw new IllegalStateException("failed after its split");
                }
            })) {
                await().atMost(WAIT).until(() -> committed(kafka, splitterGroup, orders) == 2
                        && committedKeys(completed).size() >= 2);
            }
        }
        assertEquals(List.of("o-1", "o-2"), committedKeys(completed), "each order assembled once");
        assertEquals(6, committedKeys(items).size(), "each item once: the aborted split's items are not read");
        readAll(SharedKafkaBroker.bootstrapServers(), completed, "read_committed").forEach(r ->
                assertTrue(new String(r.value(), StandardCharsets.UTF_8).contains("\"parts\":3"), r.key()));
    }

    @Test
    void aRouterRoutesEachMessageOfABatchThatAbortedOnceAndDeadLettersTheUnroutableOnce() throws Exception {
        String prefix = SharedKafkaBroker.unique("rt");
        String created = prefix + "-order-created";
        String unknown = prefix + "-unknown";
        String routedTopic = SharedKafkaBroker.unique("routed");
        String group = SharedKafkaBroker.unique("gateway");
        createTopics(created, unknown, unknown + ".DLT", routedTopic);
        AtomicInteger flakyAttempts = new AtomicInteger();
        try (EventBus bus = bus(kafka)) {
            EventRouter router = EventRouter.builder(bus)
                    .onTopic(prefix + "-order-*", OrderCreated.class, (order, ctx) -> {
                        bus.publish(routedTopic, order.orderId(), order).toCompletableFuture().join();
                        if (order.orderId().equals("flaky") && flakyAttempts.incrementAndGet() == 1) {
                            throw new IllegalStateException("the route's service is down for a moment");
                        }
                    })
                    .build();
            bus.publish(created, "k", new OrderCreated("o-1")).toCompletableFuture().join();
            bus.publish(unknown, "k", new OrderCreated("o-2")).toCompletableFuture().join();
            bus.publish(created, "k", new OrderCreated("flaky")).toCompletableFuture().join();
            try (Subscription gateway = router.subscribe(group, prefix + "-*", FROM_EARLIEST)) {
                await().atMost(WAIT).until(() -> committed(kafka, group, created) == 2 && committed(kafka, group, unknown) == 1);
            }
        }
        assertEquals(List.of("flaky", "o-1"), committedKeys(routedTopic));
        List<ConsumerRecord<String, byte[]>> deadLetters = readAll(SharedKafkaBroker.bootstrapServers(), unknown + ".DLT", "read_committed");
        assertEquals(1, deadLetters.size());
        assertEquals("{\"orderId\":\"o-2\"}", new String(deadLetters.get(0).value(), StandardCharsets.UTF_8));
    }

    @Test
    void aFlowTrackerFollowsAFlowWhoseServiceAbortedItsFirstTransactionToItsEndWithEachStepOnce() throws Exception {
        String created = SharedKafkaBroker.unique("order-created");
        String paid = SharedKafkaBroker.unique("payment-processed");
        createTopics(created, paid);
        FlowDefinition flow = FlowDefinition.builder(SharedKafkaBroker.unique("order-flow"))
                .event("order-created", "OrderService", "PaymentService")
                .event("payment-processed", "PaymentService")
                .succeedsOn("payment-processed")
                .deadline(Duration.ofMinutes(5))
                .build();
        Map<String, String> correlations = new ConcurrentHashMap<>();
        AtomicInteger attempts = new AtomicInteger();
        try (EventBus bus = bus(kafka);
             FlowTracker tracker = FlowTracker.builder(bus, flow).topics(created, paid).build().start();
             Subscription payments = bus.subscribe(SharedKafkaBroker.unique("payment-service"), created, OrderCreated.class,
                     FROM_EARLIEST, (order, ctx) -> {
                         correlations.put(order.orderId(), ctx.message().correlationId().orElseThrow());
                         bus.publish(paid, order.orderId(), new PaymentProcessed(order.orderId())).toCompletableFuture().join();
                         if (attempts.incrementAndGet() == 1) {
                             throw new IllegalStateException("failed after its publish: the transaction aborts");
                         }
                     })) {
            bus.publish(created, "o-1", new OrderCreated("o-1")).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> correlations.containsKey("o-1") && tracker.where(correlations.get("o-1"))
                    .map(instance -> instance.status() == FlowStatus.SUCCEEDED).orElse(false));
            assertEquals(2, tracker.where(correlations.get("o-1")).orElseThrow().steps().size());
            assertEquals(2, attempts.get());
        }
        assertEquals(List.of("o-1"), committedKeys(paid));
    }

    /** A handler's {@code Error} standing for the process dying: the bus passes it on to the transport. */
    static final class SimulatedCrash extends Error {
        SimulatedCrash() {
            super("the process dies here");
        }
    }

    @Test
    void anErrorMidBatchAbortsItAndTheBatchHandledAgainCommitsEachOutputAndDeadLetterOnce() throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        createTopics(orders, payments, orders + ".DLT");
        AtomicInteger crashes = new AtomicInteger();
        try (EventBus bus = bus(kafka)) {
            bus.publish(orders, "k", new OrderCreated("o-1")).toCompletableFuture().join();
            kafka.send(notJson(orders, "k")).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("o-2")).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("o-3")).toCompletableFuture().join();
            try (Subscription payment = bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (order, ctx) -> {
                bus.publish(payments, order.orderId(), new PaymentProcessed(order.orderId())).toCompletableFuture().join();
                if (order.orderId().equals("o-3") && crashes.incrementAndGet() == 1) {
                    throw new SimulatedCrash();
                }
            })) {
                await().atMost(WAIT).until(() -> committed(kafka, group, orders) == 4);
            }
        }
        assertEquals(List.of("o-1", "o-2", "o-3"), committedKeys(payments), "each payment once");
        assertEquals(6, readAll(SharedKafkaBroker.bootstrapServers(), payments, "read_uncommitted").size(),
                "the crashed batch's payments were written, and aborted");
        assertDeadLetteredOnceWithItsPayload(orders, 1);
        assertNoTransactionLeftOpen(payments, orders + ".DLT");
    }

    @Test
    void anInstanceThatDiesMidBatchIsFencedByItsRestartWhichCommitsEachOutputAndDeadLetterOnce() throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        String prefix = SharedKafkaBroker.unique("payment-service");
        createTopics(orders, payments, orders + ".DLT");
        CountDownLatch dying = new CountDownLatch(1);
        CountDownLatch wakeUp = new CountDownLatch(1);
        KafkaTransport first = exactlyOnceTransport(prefix)
                // the hung member leaves the group soon, so that its restart gets the partition
                .consumerProperty(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 2000).build();
        KafkaTransport restarted = exactlyOnceTransport(prefix).build();
        try (EventBus firstBus = bus(first); EventBus restartedBus = bus(restarted)) {
            firstBus.publish(orders, "k", new OrderCreated("o-1")).toCompletableFuture().join();
            first.send(notJson(orders, "k")).toCompletableFuture().join();
            firstBus.publish(orders, "k", new OrderCreated("o-2")).toCompletableFuture().join();
            firstBus.publish(orders, "k", new OrderCreated("o-3")).toCompletableFuture().join();
            firstBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (order, ctx) -> {
                firstBus.publish(payments, order.orderId(), new PaymentProcessed(order.orderId())).toCompletableFuture().join();
                if (order.orderId().equals("o-3")) {
                    dying.countDown();
                    wakeUp.await(); // the process is gone: its open transaction holds three payments and a dead letter
                }
            });
            assertTrue(dying.await(60, TimeUnit.SECONDS), "the first instance is in the middle of its batch");
            KafkaSubscription zombie = first.subscriptions().iterator().next();

            restartedBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (order, ctx) ->
                    restartedBus.publish(payments, order.orderId(), new PaymentProcessed(order.orderId()))
                            .toCompletableFuture().join());
            await().atMost(WAIT).until(() -> committed(restarted, group, orders) == 4);
            assertEquals(List.of("o-1", "o-2", "o-3"), committedKeys(payments), "each payment once");
            assertDeadLetteredOnceWithItsPayload(orders, 1);
            assertNoTransactionLeftOpen(payments, orders + ".DLT");

            wakeUp.countDown(); // the zombie's handler returns: its commit is fenced
            await().atMost(WAIT).until(() -> !zombie.isActive());
            assertEquals(List.of("o-1", "o-2", "o-3"), committedKeys(payments), "the zombie committed nothing");
            assertDeadLetteredOnceWithItsPayload(orders, 1);
            assertTrue(restarted.subscriptions().stream().allMatch(KafkaSubscription::isActive), "the restart goes on");
        } finally {
            wakeUp.countDown();
            first.close();
            restarted.close();
        }
    }

    private static void assertDeadLetteredOnceWithItsPayload(String topic, long offset) {
        List<ConsumerRecord<String, byte[]>> deadLetters = readAll(SharedKafkaBroker.bootstrapServers(), topic + ".DLT", "read_committed");
        assertEquals(1, deadLetters.size(), "one dead letter");
        ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
        assertEquals("not json", new String(deadLetter.value(), StandardCharsets.UTF_8));
        assertEquals("undecodable", header(deadLetter, "dlt-reason"));
        assertEquals(Long.toString(offset), header(deadLetter, "dlt-original-offset"));
        assertNull(deadLetter.headers().lastHeader("dlt-payload-omitted"), "sent whole");
    }

    /** read_committed readers can read every topic to its end: no transaction is left open on them. */
    private static void assertNoTransactionLeftOpen(String... topics) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers()))) {
            Map<TopicPartition, OffsetSpec> latest = Arrays.stream(topics)
                    .collect(Collectors.toMap(t -> new TopicPartition(t, 0), t -> OffsetSpec.latest()));
            await().atMost(WAIT).until(() -> {
                Map<TopicPartition, Long> stable = offsets(admin, latest, IsolationLevel.READ_COMMITTED);
                Map<TopicPartition, Long> written = offsets(admin, latest, IsolationLevel.READ_UNCOMMITTED);
                return stable.equals(written);
            });
        }
    }

    private static Map<TopicPartition, Long> offsets(Admin admin, Map<TopicPartition, OffsetSpec> specs,
                                                     IsolationLevel isolation) throws Exception {
        return admin.listOffsets(specs, new ListOffsetsOptions(isolation)).all().get(30, TimeUnit.SECONDS)
                .entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    }
}
