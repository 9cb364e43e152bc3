package io.streamsaga.kafka;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowStatus;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.routing.EventRouter;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The stream patterns on Kafka as an application runs them (docs/patterns.md): the aggregator and the idempotent
 * consumer over topics of several partitions with a consumer closed mid-stream and built again over the same group,
 * the aggregator's poison and late parts, its timeouts on a virtual clock (across a restart, and two instances sharing
 * its store), the router on a wildcard meeting topics created after it subscribed, and a
 * flow tracker started before its topics exist.
 */
class KafkaStreamPatternsTest {
    record OrderCreated(String orderId) {
    }

    record PaymentProcessed(String orderId) {
    }

    record InventoryReserved(String orderId) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final int ORDERS = 6;

    private static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("order-created", 1, OrderCreated.class)
                .register("payment-processed", 1, PaymentProcessed.class)
                .register("inventory-reserved", 1, InventoryReserved.class)
                .build();
    }

    private static KafkaTransport transport() {
        // The aggregator subscribes its group to three topics, one member each, and every member that joins or leaves
        // rebalances the group: the members already in it learn of that by their next heartbeat, every 3 s by default,
        // which made each instance's subscribe take seconds (about two thirds of these tests' time)
        return KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .consumerProperty(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 100)
                .redeliveryBackoff(Duration.ofMillis(100)).build();
    }

    private static void createTopics(String... topics) throws Exception {
        SharedKafkaBroker.createTopics(3, topics);
    }

    private static List<String> orders() {
        return IntStream.range(0, ORDERS).mapToObj(i -> "o-" + i).toList();
    }

    /** The docs' three topics, of three partitions each, and the aggregator's group, named for one test. */
    private record OrderTopics(String created, String paid, String reserved, String group) {
        static OrderTopics create() throws Exception {
            OrderTopics topics = new OrderTopics(SharedKafkaBroker.unique("order-created"),
                    SharedKafkaBroker.unique("payment-processed"), SharedKafkaBroker.unique("inventory-reserved"),
                    SharedKafkaBroker.unique("order-aggregator"));
            createTopics(topics.created, topics.paid, topics.reserved);
            return topics;
        }

        /** Subscribes {@code aggregator} to the three topics under the group, as the docs' snippet does. */
        void subscribe(EventAggregator aggregator) {
            aggregator.subscribe(group, created, paid, reserved);
        }
    }

    @Test
    void anAggregatorRestartedOverTheSameGroupAndStoreReleasesEveryGroupOnceWithAllItsParts() throws Exception {
        OrderTopics topics = OrderTopics.create();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        Map<String, AtomicInteger> releases = new ConcurrentHashMap<>();
        Map<String, Integer> partsReleased = new ConcurrentHashMap<>();

        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build();
             EventAggregator aggregator = aggregator(bus, store, releases, partsReleased)) {
            topics.subscribe(aggregator);
            for (String order : orders()) {
                bus.publish(topics.created(), order, new OrderCreated(order)).toCompletableFuture().join();
                bus.publish(topics.paid(), order, new PaymentProcessed(order)).toCompletableFuture().join();
            }
            await().atMost(WAIT).until(() -> orders().stream()
                    .allMatch(o -> aggregator.group(o).map(g -> g.size() == 2).orElse(false)));
        }

        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build();
             EventAggregator aggregator = aggregator(bus, store, releases, partsReleased)) {
            topics.subscribe(aggregator);
            for (String order : orders()) {
                bus.publish(topics.reserved(), order, new InventoryReserved(order)).toCompletableFuture().join();
            }
            await().atMost(WAIT).until(() -> releases.size() == ORDERS);
        }
        orders().forEach(o -> {
            assertEquals(1, releases.get(o).get(), "releases of " + o);
            assertEquals(3, partsReleased.get(o), "parts released for " + o);
        });
    }

    private static EventAggregator aggregator(EventBus bus, InMemoryAggregationStore store,
                                              Map<String, AtomicInteger> releases, Map<String, Integer> parts) {
        return EventAggregator.builder(bus, store)
                .name("order-aggregator")
                .correlateByField("orderId")
                .completeWhen(g -> g.hasTypes("order-created", "payment-processed", "inventory-reserved"))
                .onRelease((Aggregate aggregate) -> {
                    releases.computeIfAbsent(aggregate.key(), k -> new AtomicInteger()).incrementAndGet();
                    parts.put(aggregate.key(), aggregate.group().size());
                })
                .build();
    }

    @Test
    void aGroupThatNeverCompletesIsDeadLetteredByItsTimeoutOnTheVirtualClockAlsoWhenTheDeadlinePassedWhileNoInstanceRan()
            throws Exception {
        // patterns.md section 4: the docs' aggregator with its 15-minute DEAD_LETTER timeout, on the bus's scheduler (a
        // virtual one here); building an aggregator re-arms every stored deadline, and one that passed while nothing ran
        // fires at once; a part for a group its timeout closed is a late part, dead-lettered
        OrderTopics topics = OrderTopics.create();
        VirtualScheduler clock = new VirtualScheduler();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        Map<String, AtomicInteger> releases = new ConcurrentHashMap<>();
        Map<String, String> released = new ConcurrentHashMap<>();
        List<String> complete = orders().subList(0, 3);
        List<String> incomplete = orders().subList(3, ORDERS);

        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).scheduler(clock).build();
             EventAggregator aggregator = timedAggregator(bus, store, TimeoutPolicy.DEAD_LETTER, releases, released)) {
            topics.subscribe(aggregator);
            for (String order : orders()) {
                bus.publish(topics.created(), order, new OrderCreated(order)).toCompletableFuture().join();
            }
            for (String order : complete) {
                bus.publish(topics.paid(), order, new PaymentProcessed(order)).toCompletableFuture().join();
                bus.publish(topics.reserved(), order, new InventoryReserved(order)).toCompletableFuture().join();
            }
            await().atMost(WAIT).until(() -> releases.size() == complete.size()
                    && incomplete.stream().allMatch(o -> aggregator.group(o).isPresent()));
            clock.advance(Duration.ofMinutes(10));
            incomplete.forEach(o -> assertEquals(GroupState.OPEN, aggregator.group(o).orElseThrow().state(), o));
        }
        clock.advance(Duration.ofMinutes(10)); // the deadline passes while no instance runs

        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).scheduler(clock).build();
             EventAggregator aggregator = timedAggregator(bus, store, TimeoutPolicy.DEAD_LETTER, releases, released);
             Subscription dlt = bus.subscribe(SharedKafkaBroker.unique("ops"), topics.created() + ".DLT", Message.class,
                     SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message))) {
            clock.runDueTasks(); // the deadlines re-armed when the aggregator was built are due
            incomplete.forEach(o -> assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregator.group(o).orElseThrow().state(), o));
            topics.subscribe(aggregator);
            bus.publish(topics.created(), "o-3", new OrderCreated("o-3")).toCompletableFuture().join(); // sent again, a new id: late
            await().atMost(WAIT).until(() -> deadLetters.size() == incomplete.size() + 1);
        }
        complete.forEach(o -> assertEquals(1, releases.get(o).get(), "releases of " + o));
        assertEquals(Map.of("o-0", "3", "o-1", "3", "o-2", "3"), released, "an incomplete group is never released");
        assertEquals(List.of("o-3:aggregation-timeout:" + topics.created(), "o-3:handler-failed:AggregationException",
                        "o-4:aggregation-timeout:" + topics.created(), "o-5:aggregation-timeout:" + topics.created()),
                deadLetters.stream().map(m -> m.key() + ":" + m.header(MessageHeaders.DLT_REASON).orElseThrow() + ":"
                        + (m.header(MessageHeaders.DLT_REASON).orElseThrow().equals("handler-failed")
                        ? m.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow().replaceAll(".*\\.", "")
                        : m.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow())).sorted().toList(),
                deadLetters.toString());
        // each timed-out part is dead-lettered once, under the id by which it is found on its topic (the late part's
        // dead letter, the bus's, names its own original)
        assertEquals(incomplete.size(), deadLetters.stream()
                .filter(m -> m.header(MessageHeaders.DLT_REASON).orElseThrow().equals("aggregation-timeout"))
                .flatMap(m -> m.header(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID).stream()).distinct().count());
    }

    @Test
    void aGroupThatNeverCompletesIsReleasedPartialOnceByItsTimeoutWhoeverOfTwoInstancesHoldsItsParts() throws Exception {
        // Two instances of the application under one group over the docs' topics share the store and (here) the virtual
        // clock; the topics' partitions are split between them, so a group's parts come to either. Its deadline is
        // armed by the instance that opened it; its partial release, at the timeout, runs once.
        OrderTopics topics = OrderTopics.create();
        VirtualScheduler clock = new VirtualScheduler();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        Map<String, AtomicInteger> releases = new ConcurrentHashMap<>();
        Map<String, String> released = new ConcurrentHashMap<>();
        try (KafkaTransport kafkaA = transport(); EventBus busA = EventBus.builder(kafkaA).types(types()).scheduler(clock).build();
             KafkaTransport kafkaB = transport(); EventBus busB = EventBus.builder(kafkaB).types(types()).scheduler(clock).build();
             EventAggregator a = timedAggregator(busA, store, TimeoutPolicy.RELEASE_PARTIAL, releases, released);
             EventAggregator b = timedAggregator(busB, store, TimeoutPolicy.RELEASE_PARTIAL, releases, released)) {
            topics.subscribe(a);
            topics.subscribe(b);
            for (String order : orders()) { // no inventory reserved: no group completes
                busA.publish(topics.created(), order, new OrderCreated(order)).toCompletableFuture().join();
                busA.publish(topics.paid(), order, new PaymentProcessed(order)).toCompletableFuture().join();
            }
            await().atMost(WAIT).until(() -> orders().stream().allMatch(o -> a.group(o).map(g -> g.size() == 2).orElse(false)));
            clock.advance(Duration.ofMinutes(15));
            orders().forEach(o -> assertEquals(GroupState.TIMED_OUT_RELEASED, a.group(o).orElseThrow().state(), o));
            clock.advance(Duration.ofMinutes(30)); // nothing is released again
        }
        orders().forEach(o -> {
            assertEquals(1, releases.get(o).get(), "releases of " + o);
            assertEquals("2 partial", released.get(o), "release of " + o);
        });
    }

    /** The docs' aggregator with a 15-minute timeout; {@code released} gets each release's part count and whether partial. */
    private static EventAggregator timedAggregator(EventBus bus, InMemoryAggregationStore store, TimeoutPolicy policy,
                                                   Map<String, AtomicInteger> releases, Map<String, String> released) {
        return EventAggregator.builder(bus, store)
                .name("order-aggregator")
                .correlateByField("orderId")
                .completeWhen(g -> g.hasTypes("order-created", "payment-processed", "inventory-reserved"))
                .timeout(Duration.ofMinutes(15), policy)
                .onRelease((Aggregate aggregate) -> {
                    releases.computeIfAbsent(aggregate.key(), k -> new AtomicInteger()).incrementAndGet();
                    released.put(aggregate.key(), aggregate.group().size() + (aggregate.partial() ? " partial" : ""));
                })
                .build();
    }

    @Test
    void anIdempotentConsumerRestartedOverTheSameGroupAppliesEachMessageOnceAndDropsARepublishedDuplicate()
            throws Exception {
        String topic = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("billing");
        createTopics(topic);
        InMemoryDeduplicationStore store = InMemoryDeduplicationStore.builder().build();
        Map<String, AtomicInteger> applied = new ConcurrentHashMap<>();
        io.streamsaga.bus.EventHandler<OrderCreated> apply =
                (event, ctx) -> applied.computeIfAbsent(event.orderId(), k -> new AtomicInteger()).incrementAndGet();

        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build()) {
            IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
            try (Subscription subscription = bus.subscribe(group, topic, OrderCreated.class, consumer.wrap(apply))) {
                for (String order : orders().subList(0, 3)) {
                    bus.publish(topic, order, new OrderCreated(order)).toCompletableFuture().join();
                }
                await().atMost(WAIT).until(() -> applied.size() == 3);
            }
        }
        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build()) {
            IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
            try (Subscription subscription = bus.subscribe(group, topic, OrderCreated.class, consumer.wrap(apply))) {
                for (String order : orders().subList(3, ORDERS)) {
                    bus.publish(topic, order, new OrderCreated(order)).toCompletableFuture().join();
                }
                // the same message sent twice by a producer that retried (one id), on the key's partition
                Message twice = Message.builder(topic).id("resent-o-0").key("o-0").type("order-created")
                        .payload("{\"orderId\":\"o-0\"}".getBytes(StandardCharsets.UTF_8)).build();
                kafka.send(twice).toCompletableFuture().join();
                kafka.send(twice).toCompletableFuture().join();
                // after them on the key's partition: once it is applied, so are they (order per key)
                bus.publish(topic, "o-0", new OrderCreated("o-last")).toCompletableFuture().join();
                await().atMost(WAIT).until(() -> applied.containsKey("o-last"));
            }
        }
        assertEquals(2, applied.get("o-0").get(), "o-0 once as published, once under the resent id, not thrice");
        assertEquals(1, applied.get("o-last").get());
        orders().subList(1, ORDERS).forEach(o -> assertEquals(1, applied.get(o).get(), "applications of " + o));
    }

    @Test
    void aRouterOnAWildcardRoutesTheFirstMessagesOfTopicsCreatedAfterItSubscribedAndDeadLettersTheUnroutable() {
        // A LATEST wildcard member learns of a new topic at its next metadata refresh; the messages published to
        // it meanwhile (the first one created the topic) must be routed, not skipped as before its start.
        String prefix = SharedKafkaBroker.unique("rt");
        String group = SharedKafkaBroker.unique("gateway");
        Map<String, String> routed = new ConcurrentHashMap<>();
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build()) {
            EventRouter router = EventRouter.builder(bus)
                    .onTopic(prefix + "-order-created", OrderCreated.class, (event, ctx) -> routed.put(event.orderId(), ctx.topic()))
                    .onTopic(prefix + "-inventory-*", InventoryReserved.class, (event, ctx) -> routed.put(event.orderId(), ctx.topic()))
                    .build();
            try (Subscription gateway = router.subscribe(group, prefix + "-*", SubscriptionOptions.defaults());
                 Subscription dlt = bus.subscribe(SharedKafkaBroker.unique("ops"), prefix + "-unknown.DLT", Message.class,
                         SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message))) {
                bus.publish(prefix + "-order-created", "o-1", new OrderCreated("o-1")).toCompletableFuture().join();
                bus.publish(prefix + "-inventory-reserved", "o-2", new InventoryReserved("o-2")).toCompletableFuture().join();
                bus.publish(prefix + "-unknown", "o-3", new OrderCreated("o-3")).toCompletableFuture().join();
                await().atMost(WAIT).until(() -> routed.size() == 2 && deadLetters.size() == 1);
            }
        }
        assertEquals(Map.of("o-1", prefix + "-order-created", "o-2", prefix + "-inventory-reserved"), routed);
    }

    @Test
    void anAggregatorDeadLettersAPoisonPartAndALatePartAndItsPartitionMovesOnToReleaseTheGroup() throws Exception {
        String topic = SharedKafkaBroker.unique("order-parts");
        createTopics(topic);
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        Map<String, AtomicInteger> releases = new ConcurrentHashMap<>();
        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build();
             EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                     .name("pairs").correlateByField("orderId").completeOnSize(2)
                     .onRelease(aggregate -> releases.computeIfAbsent(aggregate.key(), k -> new AtomicInteger()).incrementAndGet())
                     .build();
             Subscription dlt = bus.subscribe(SharedKafkaBroker.unique("ops"), topic + ".DLT", Message.class,
                     SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message))) {
            aggregator.subscribe(SharedKafkaBroker.unique("pairs"), topic);
            bus.publish(topic, "o-1", new OrderCreated("o-1")).toCompletableFuture().join();
            kafka.send(Message.builder(topic).key("o-1").type("order-created")
                    .payload("not json".getBytes(StandardCharsets.UTF_8)).build()).toCompletableFuture().join();
            bus.publish(topic, "o-1", new PaymentProcessed("o-1")).toCompletableFuture().join();
            bus.publish(topic, "o-1", new InventoryReserved("o-1")).toCompletableFuture().join(); // late: the pair is released
            await().atMost(WAIT).until(() -> deadLetters.size() == 2);
        }
        assertEquals(1, releases.get("o-1").get());
        // both fail the aggregator's handling at once (not retriable): the poison part's payload is decoded by
        // the aggregator, not the bus (it reads Message), so its reason is handler-failed, not undecodable
        assertEquals(List.of("order-created:DecodingException:1", "inventory-reserved:AggregationException:1"),
                deadLetters.stream().map(m -> m.type() + ":" + m.header("dlt-error-class").orElse("none")
                        .replaceAll(".*\\.", "") + ":" + m.header("dlt-attempts").orElse("none")).toList(),
                deadLetters.toString());
    }

    @Test
    void aFlowTrackerStartedBeforeItsTopicsExistFollowsAChoreographedFlowToItsEnd() {
        // docs/choreography.md: the tracker starts (LATEST) before any service published, so its topics do not exist
        // yet; the first event on each, which creates the topic, must still be seen.
        String created = SharedKafkaBroker.unique("order-created");
        String paid = SharedKafkaBroker.unique("payment-processed");
        FlowDefinition flow = FlowDefinition.builder(SharedKafkaBroker.unique("order-flow"))
                .event("order-created", "OrderService", "PaymentService")
                .event("payment-processed", "PaymentService")
                .succeedsOn("payment-processed")
                .deadline(Duration.ofMinutes(5))
                .build();
        Map<String, String> correlations = new ConcurrentHashMap<>();
        try (KafkaTransport kafka = transport(); EventBus bus = EventBus.builder(kafka).types(types()).build();
             FlowTracker tracker = FlowTracker.builder(bus, flow).topics(created, paid).build().start();
             Subscription payments = bus.subscribe(SharedKafkaBroker.unique("payment-service"), created, OrderCreated.class,
                     SubscriptionOptions.fromEarliest(), (order, ctx) -> {
                         correlations.put(order.orderId(), ctx.message().correlationId().orElseThrow());
                         bus.publish(paid, order.orderId(), new PaymentProcessed(order.orderId())).toCompletableFuture().join();
                     })) {
            bus.publish(created, "o-1", new OrderCreated("o-1")).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> correlations.containsKey("o-1") && tracker.where(correlations.get("o-1"))
                    .map(instance -> instance.status() == FlowStatus.SUCCEEDED).orElse(false));
            assertEquals(2, tracker.where(correlations.get("o-1")).orElseThrow().steps().size());
        }
    }
}
