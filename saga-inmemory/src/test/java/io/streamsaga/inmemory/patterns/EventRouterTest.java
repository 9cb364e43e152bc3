package io.streamsaga.inmemory.patterns;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.routing.EventRouter;
import io.streamsaga.routing.RouteContext;
import io.streamsaga.routing.UnmatchedPolicy;
import io.streamsaga.routing.UnroutableMessageException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventRouterTest {
    record OrderCreated(String orderId) {
    }

    record PaymentProcessed(String orderId) {
    }

    record InventoryUpdated(String sku) {
    }

    private final List<Map<String, String>> unmatchedMetrics = new CopyOnWriteArrayList<>();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder()
                    .register("order-created", 1, OrderCreated.class)
                    .register("payment-processed", 1, PaymentProcessed.class)
                    .register("inventory-updated", 1, InventoryUpdated.class).build())
            .scheduler(new VirtualScheduler())
            .metrics(new MetricsRecorder() {
                @Override
                public void increment(String name, Map<String, String> tags) {
                    if (name.equals(EventRouter.UNMATCHED_METRIC)) {
                        unmatchedMetrics.add(tags);
                    }
                }
            })
            .build();
    private final List<String> seen = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private EventRouter.Builder router() {
        return EventRouter.builder(bus).name("gateway")
                .onTopic("order-created", OrderCreated.class, (e, ctx) -> seen.add("order:" + e.orderId() + "@" + ctx.topic()))
                .onType("payment-processed", PaymentProcessed.class, (e, ctx) -> seen.add("payment:" + ctx.kind() + "@" + ctx.topic()))
                .onTopic("inventory-*", JsonNode.class, (e, ctx) -> seen.add("inventory:" + ctx.matchedBy() + "@" + ctx.topic()));
    }

    @Test
    void dispatchesByExactTopicEventTypeAndWildcardAndTellsWhichMatched() {
        router().build().subscribe("gateway");
        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        bus.publish("payments-eu", "o-1", new PaymentProcessed("o-1"));
        bus.publish("inventory-updated", "sku-1", new InventoryUpdated("sku-1"));
        bus.publish("inventory-restocked", "sku-1", new InventoryUpdated("sku-1"));
        transport.drainAll();
        assertEquals(List.of("order:o-1@order-created", "payment:EVENT_TYPE@payments-eu",
                "inventory:inventory-*@inventory-updated", "inventory:inventory-*@inventory-restocked"), seen.stream().sorted(
                java.util.Comparator.comparing((String s) -> s.startsWith("order") ? 0 : s.startsWith("payment") ? 1 : 2)).toList());
    }

    @Test
    void exactTopicBeatsTypeAndTypeBeatsWildcard() {
        EventRouter router = EventRouter.builder(bus)
                .onTopic("*", Message.class, (m, ctx) -> { })
                .onType("order-created", Message.class, (m, ctx) -> { })
                .onTopic("order-created", Message.class, (m, ctx) -> { })
                .build();
        Message onExact = Message.builder("order-created").type("order-created").build();
        Message typedElsewhere = Message.builder("orders-v2").type("order-created").build();
        Message other = Message.builder("orders-v2").type("order-deleted").build();
        assertEquals("TOPIC:order-created", router.describeRoute(onExact).orElseThrow());
        assertEquals("EVENT_TYPE:order-created", router.describeRoute(typedElsewhere).orElseThrow());
        assertEquals("WILDCARD:*", router.describeRoute(other).orElseThrow());
    }

    @Test
    void unroutableMessageIsDeadLetteredOnceNeverRetriedInALoop() {
        router().build().subscribe("gateway");
        bus.publish("user-registered", "u-1", new OrderCreated("not routed"));
        transport.drainAll();
        List<Message> dead = transport.messages("user-registered.DLT");
        assertEquals(1, dead.size());
        assertEquals(UnroutableMessageException.class.getName(), dead.get(0).header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("1", dead.get(0).header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
        assertTrue(seen.isEmpty());
        assertEquals(List.of(Map.of("router", "gateway", "topic", "user-registered", "policy", "dead_letter")), unmatchedMetrics);
        assertEquals(0, transport.pendingCount(), "the catch-all router does not consume its own dead letters");
    }

    @Test
    void dropPolicyAcknowledgesWithAWarningAndAMetric() {
        router().unmatched(UnmatchedPolicy.DROP).build().subscribe("gateway");
        bus.publish("user-registered", "u-1", new OrderCreated("not routed"));
        bus.publish("order-created", "o-2", new OrderCreated("o-2"));
        transport.drainAll();
        assertTrue(transport.messages("user-registered.DLT").isEmpty());
        assertEquals(List.of("order:o-2@order-created"), seen);
        assertEquals("drop", unmatchedMetrics.get(0).get("policy"));
    }

    @Test
    void messageARouteCannotDecodeIsDeadLetteredAtOnce() {
        router().build().subscribe("gateway");
        // a payment-processed event published on the order-created topic: the exact-topic route expects OrderCreated
        bus.publish("order-created", "o-1", new PaymentProcessed("o-1"));
        transport.drainAll();
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size());
        assertEquals(io.streamsaga.codec.DecodingException.class.getName(), dead.get(0).header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("1", dead.get(0).header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
        assertTrue(seen.isEmpty());
    }

    @Test
    void conflictingOrEmptyRoutesAreRefused() {
        assertThrows(ConfigurationException.class, () -> EventRouter.builder(bus)
                .onTopic("order-created", Message.class, (m, ctx) -> { })
                .onTopic("order-created", Message.class, (m, ctx) -> { }));
        assertThrows(ConfigurationException.class, () -> EventRouter.builder(bus).build());
        assertThrows(ConfigurationException.class, () -> EventRouter.builder(bus).onTopic("bad topic!", Message.class, (m, ctx) -> { }));
    }

    /**
     * A wildcard never matches a dead-letter topic ({@code .DLT}) or an internal one ({@code __}), and a topic name is
     * at most 249 characters: a route for {@code *.DLT} or {@code __*} could never take a message, and was taken
     * without a word (an application meaning to route its dead letters saw none of them routed).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("patternsMatchingNoTopic")
    void aWildcardRouteThatCanMatchNoTopicIsRefusedNamingThePattern(String pattern) {
        EventRouter.Builder builder = EventRouter.builder(bus).name("gateway");

        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> builder.onTopic(pattern, Message.class, (m, ctx) -> { }));

        assertTrue(e.getMessage().startsWith("router 'gateway' cannot route " + io.streamsaga.StreamSagaException.quote(pattern)
                + ", a wildcard that matches no topic"), e.getMessage());
        assertTrue(e.getMessage().contains("by its exact name"), e.getMessage());
    }

    static List<String> patternsMatchingNoTopic() {
        return List.of("*.DLT", "orders-*.DLT", "__*", "__*.DLT", "a".repeat(250) + "*");
    }

    /**
     * Kafka takes no topic name over 249 characters (and the bus publishes to none over 245 but a dead-letter topic):
     * a route for an exact name of 250 could never take a message, and was taken without a word, as a wildcard
     * spelling 250 no longer is.
     */
    @Test
    void aRouteForAnExactNameLongerThanAnyTopicNameIsRefusedNamingIt() {
        EventRouter.Builder builder = EventRouter.builder(bus).name("gateway");
        String tooLong = "a".repeat(250);

        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> builder.onTopic(tooLong, Message.class, (m, ctx) -> { }));

        assertTrue(e.getMessage().startsWith("router 'gateway' cannot route " + io.streamsaga.StreamSagaException.quote(tooLong)
                + ", a name longer than the 249 characters"), e.getMessage());
        builder.onTopic("a".repeat(249), Message.class, (m, ctx) -> { }); // the longest topic name is taken
    }

    record UserRegistered(String userId) {
    }

    /**
     * A route decodes each message it takes to its class, so a route of a class the bus's codec cannot decode to
     * (one left out of the registry) failed every message it took, dead-lettered as a handler failure, while the route
     * was taken without a word, where the bus refuses such a subscription. A route of a JDK type is told to take a
     * message or a JSON tree, not to register the type.
     */
    @Test
    void aRouteOfAClassTheBussCodecCannotDecodeToIsRefusedNamingTheCallThatRegistersIt() {
        EventRouter.Builder builder = EventRouter.builder(bus).name("gateway");

        ConfigurationException byTopic = assertThrows(ConfigurationException.class,
                () -> builder.onTopic("user-registered", UserRegistered.class, (u, ctx) -> { }));
        ConfigurationException byType = assertThrows(ConfigurationException.class,
                () -> builder.onType("user-registered", UserRegistered.class, (u, ctx) -> { }));

        for (ConfigurationException e : List.of(byTopic, byType)) {
            assertTrue(e.getMessage().startsWith("router 'gateway' cannot route 'user-registered' to "
                    + UserRegistered.class.getName() + ", a class the bus's codec cannot decode to"), e.getMessage());
            assertTrue(e.getMessage().contains("register(type, version, UserRegistered.class)"), e.getMessage());
        }
        ConfigurationException ofString = assertThrows(ConfigurationException.class,
                () -> builder.onTopic("user-registered", String.class, (u, ctx) -> { }));
        assertTrue(ofString.getMessage().endsWith("java.lang.String is not an event class the registry can bind; take"
                + " Message (its payload()) or JsonNode (the payload as a JSON tree) and read the value from it"),
                ofString.getMessage());
        builder.onTopic("order-created", OrderCreated.class, (o, ctx) -> { }) // registered, a tree and a message: taken
                .onTopic("user-*", com.fasterxml.jackson.databind.JsonNode.class, (tree, ctx) -> { })
                .onType("user-registered", Message.class, (m, ctx) -> { })
                .build();
    }

    @Test
    void aRouteForADeadLetterTopicByItsExactNameOrAWildcardThatMatchesSomeTopicIsTaken() {
        EventRouter router = EventRouter.builder(bus).name("gateway")
                .onTopic("orders.DLT", Message.class, (m, ctx) -> seen.add("dead:" + ctx.topic()))
                .onTopic("*.DLT*", Message.class, (m, ctx) -> seen.add("wild:" + ctx.topic()))
                .build();

        router.subscribe("gateway-dlt", "orders.DLT", io.streamsaga.bus.SubscriptionOptions.defaults());
        bus.publish("orders.DLT", "o-1", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of("dead:orders.DLT"), seen);
        assertEquals(java.util.Optional.of("WILDCARD:*.DLT*"), router.describeRoute(Message.builder("a.DLTb").type("x").build()));
    }

    @Test
    void routeContextCarriesTheDelivery() {
        List<RouteContext> contexts = new CopyOnWriteArrayList<>();
        EventRouter.builder(bus).onTopic("order-*", OrderCreated.class, (e, ctx) -> contexts.add(ctx)).build().subscribe("gateway");
        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        transport.drainAll();
        assertEquals("gateway", contexts.get(0).delivery().group());
        assertEquals(1, contexts.get(0).delivery().attempt());
        assertEquals(RouteContext.Kind.WILDCARD, contexts.get(0).kind());
    }
}
