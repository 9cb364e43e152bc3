package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.strangler.LegacyEventSync;
import io.streamsaga.strangler.RoutingRules;
import io.streamsaga.strangler.StranglerGateway;
import io.streamsaga.strangler.Target;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The strangler fig and CQRS of docs/architectures.md on Kafka, as an application runs them: order creation moved
 * tenant by tenant to the new service while the legacy events are synced into it over a topic of three partitions, the
 * sync restarted over its group, shadow mode meeting the sync's lag, and a projection rebuilt while orders keep coming
 * and started again after a restart.
 */
class KafkaArchitecturesTest {
    /** An HTTP-like request: {@code POST /orders} creates order {@code <tenant>/<seq>}, {@code GET /orders} lists. */
    record ApiRequest(String route, String tenant, int seq) {
        String orderId() {
            return tenant + "/" + seq;
        }
    }

    record LegacyOrderCreated(String orderId, String tenant, int seq) {
    }

    record OrderPlaced(String customer, int seq) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** Keys over all three partitions (tenant-2 to -4 on 0, tenant-0 and -1 on 1, tenant-5 on 2). */
    private static final List<String> TENANTS = IntStream.range(0, 6).mapToObj(i -> "tenant-" + i).toList();

    private static KafkaTransport transport() {
        return KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build();
    }

    private static EventBus bus(KafkaTransport kafka) {
        return EventBus.builder(kafka).types(TypeRegistry.builder()
                .register("order-created-legacy", 1, LegacyOrderCreated.class)
                .register("order-placed", 1, OrderPlaced.class).build()).build();
    }

    private static void createTopic(String topic) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
        }
    }

    /** The monolith: stores orders and emits {@code order-created-legacy} for each, keyed by tenant. */
    static final class Monolith {
        final Set<String> orders = ConcurrentHashMap.newKeySet();
        final EventBus bus;
        final String topic;

        Monolith(EventBus bus, String topic) {
            this.bus = bus;
            this.topic = topic;
        }

        String handle(ApiRequest request) {
            if (request.route().equals("GET /orders")) {
                return new TreeMap<>(Map.of("orders", new TreeSet<>(orders))).toString();
            }
            orders.add(request.orderId());
            bus.publish(topic, request.tenant(), new LegacyOrderCreated(request.orderId(), request.tenant(), request.seq()))
                    .toCompletableFuture().join();
            return "created " + request.orderId();
        }
    }

    /** The new service: its own creates and the legacy sync write to one store, by upsert. */
    static final class NewService {
        final Set<String> orders = ConcurrentHashMap.newKeySet();
        final Set<String> createdHere = ConcurrentHashMap.newKeySet();
        final Map<String, AtomicInteger> syncWrites = new ConcurrentHashMap<>();
        /** Per tenant, the sequence numbers the sync wrote, in the order it wrote them. */
        final Map<String, List<Integer>> syncedInOrder = new ConcurrentHashMap<>();

        String handle(ApiRequest request) {
            if (request.route().equals("GET /orders")) {
                return new TreeMap<>(Map.of("orders", new TreeSet<>(orders))).toString();
            }
            createdHere.add(request.orderId());
            orders.add(request.orderId());
            return "created " + request.orderId();
        }

        void sync(LegacyOrderCreated event) {
            syncWrites.computeIfAbsent(event.orderId(), k -> new AtomicInteger()).incrementAndGet();
            syncedInOrder.computeIfAbsent(event.tenant(), k -> new CopyOnWriteArrayList<>()).add(event.seq());
            orders.add(event.orderId());
        }
    }

    private static LegacyEventSync<LegacyOrderCreated> sync(EventBus bus, String topic, String group, NewService modern) {
        return LegacyEventSync.builder(bus, topic, LegacyOrderCreated.class, modern::sync)
                .group(group)
                .dedupeBy((event, ctx) -> event.orderId()) // the monolith may resend with a fresh message id
                .build().start();
    }

    private static void createOrders(StranglerGateway<ApiRequest, String> gateway, int fromSeq, int toSeq) throws Exception {
        for (int seq = fromSeq; seq < toSeq; seq++) {
            for (String tenant : TENANTS) {
                gateway.handle(new ApiRequest("POST /orders", tenant, seq));
            }
        }
    }

    @Test
    void ordersCreatedWhileCreationMovesToTheNewServiceTenantByTenantEndUpThereOnceEachInTenantOrderAcrossASyncRestart()
            throws Exception {
        String legacyTopic = SharedKafkaBroker.unique("order-created-legacy");
        String syncGroup = SharedKafkaBroker.unique("legacy-sync");
        createTopic(legacyTopic);
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             Subscription dlt = bus.subscribe(SharedKafkaBroker.unique("ops"), legacyTopic + ".DLT", Message.class,
                     SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message))) {
            Monolith legacy = new Monolith(bus, legacyTopic);
            NewService modern = new NewService();
            StranglerGateway<ApiRequest, String> gateway = StranglerGateway.<ApiRequest, String>builder(legacy::handle, modern::handle,
                    ApiRequest::route).tenantOf(ApiRequest::tenant).build();
            LegacyEventSync<LegacyOrderCreated> first = sync(bus, legacyTopic, syncGroup, modern);

            createOrders(gateway, 0, 4); // everything on the monolith
            // creation moves for the pilot tenants while the sync still copies the orders above
            gateway.update(rules -> rules.withTenant("tenant-0", Target.MODERN).withTenant("tenant-2", Target.MODERN)
                    .withTenant("tenant-5", Target.MODERN));
            createOrders(gateway, 4, 8);
            await().atMost(WAIT).until(() -> TENANTS.stream().allMatch(t -> IntStream.range(0, 4)
                    .allMatch(seq -> modern.syncWrites.containsKey(t + "/" + seq))));
            first.close(); // the sync restarts over its group, the last legacy orders perhaps not copied yet

            Message resent = Message.builder(legacyTopic).key("tenant-1").type("order-created-legacy")
                    .payload("{\"orderId\":\"tenant-1/0\",\"tenant\":\"tenant-1\",\"seq\":0}".getBytes(StandardCharsets.UTF_8)).build();
            kafka.send(resent).toCompletableFuture().join(); // the monolith resends a synced order under a new id
            kafka.send(Message.builder(legacyTopic).key("tenant-1").type("order-created-legacy")
                    .payload("not json".getBytes(StandardCharsets.UTF_8)).build()).toCompletableFuture().join();
            kafka.send(Message.builder(legacyTopic).key("tenant-1").type("order-created-legacy")
                    .payload("{\"tenant\":\"tenant-1\",\"seq\":99}".getBytes(StandardCharsets.UTF_8)).build()).toCompletableFuture().join();
            try (LegacyEventSync<LegacyOrderCreated> second = sync(bus, legacyTopic, syncGroup, modern)) {
                createOrders(gateway, 8, 10); // tenant-1's are behind the bad events on its partition
                gateway.rules(RoutingRules.allLegacy().withDefault(Target.MODERN)); // the monolith is retired
                createOrders(gateway, 10, 11);
                await().atMost(WAIT).until(() -> modern.orders.size() == all().size() && deadLetters.size() == 2);
                assertEquals(all(), new TreeSet<>(modern.orders));
                assertEquals(0, first.duplicatesSkipped() + second.duplicatesSkipped(),
                        "the resend came after the restart, to a seen-set that does not remember the first sync's keys");
            }

            // every order was created on exactly one side; the pilot tenants' orders from the switch on never on the monolith
            assertTrue(legacy.orders.stream().noneMatch(modern.createdHere::contains));
            assertEquals(all(), union(legacy.orders, modern.createdHere));
            for (String pilot : List.of("tenant-0", "tenant-2", "tenant-5")) {
                IntStream.range(4, 11).forEach(seq -> assertTrue(modern.createdHere.contains(pilot + "/" + seq), pilot + "/" + seq));
            }
            IntStream.range(0, 10).forEach(seq -> assertTrue(legacy.orders.contains("tenant-1/" + seq), "tenant-1/" + seq));
            // the sync wrote each legacy order once, but the one resent after the restart twice (an upsert keeps one)
            legacy.orders.forEach(order -> assertEquals(order.equals("tenant-1/0") ? 2 : 1, modern.syncWrites.get(order).get(), order));
            assertEquals(legacy.orders.size(), modern.syncWrites.size());
            // and each tenant's in the order the monolith created them (per key order), the resend aside
            modern.syncedInOrder.forEach((tenant, seqs) -> {
                List<Integer> firsts = seqs.stream().distinct().toList();
                assertEquals(firsts.stream().sorted().toList(), firsts, tenant + ": " + seqs);
            });
            // bad input: a dead letter each, the partition moving on
            assertEquals(List.of("handler-failed:io.streamsaga.ConfigurationException", "undecodable:none"),
                    deadLetters.stream().map(m -> m.header(MessageHeaders.DLT_REASON).orElseThrow() + ":"
                            + (m.header(MessageHeaders.DLT_REASON).orElseThrow().equals("undecodable") ? "none"
                            : m.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow())).sorted().toList(), deadLetters.toString());
        }
    }

    private static Set<String> all() {
        Set<String> all = new TreeSet<>();
        TENANTS.forEach(t -> IntStream.range(0, 11).forEach(seq -> all.add(t + "/" + seq)));
        return all;
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> union = new TreeSet<>(a);
        union.addAll(b);
        return union;
    }

    @Test
    void aShadowedReadTheSyncHasNotCaughtUpWithIsRecordedAsAMismatchThatIsOnlyItsLag() throws Exception {
        // The new side reads what the sync copied over the broker, a moment after the legacy side wrote it: a shadowed
        // read in that moment differs, though nothing is wrong but the lag.
        String legacyTopic = SharedKafkaBroker.unique("order-created-legacy");
        CountDownLatch syncing = new CountDownLatch(1);
        CountDownLatch proceed = new CountDownLatch(1);
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka)) {
            Monolith legacy = new Monolith(bus, legacyTopic);
            NewService modern = new NewService();
            StranglerGateway<ApiRequest, String> gateway = StranglerGateway.<ApiRequest, String>builder(legacy::handle, modern::handle,
                    ApiRequest::route).rules(RoutingRules.allLegacy().withRoute("GET /orders", Target.SHADOW)).build();
            try (LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, legacyTopic, LegacyOrderCreated.class,
                    event -> {
                        syncing.countDown();
                        assertTrue(proceed.await(WAIT.toSeconds(), TimeUnit.SECONDS));
                        modern.sync(event);
                    }).group(SharedKafkaBroker.unique("legacy-sync")).build().start()) {
                gateway.handle(new ApiRequest("POST /orders", "tenant-0", 0));
                assertTrue(syncing.await(WAIT.toSeconds(), TimeUnit.SECONDS));
                String served = gateway.handle(new ApiRequest("GET /orders", "tenant-0", 0));
                assertEquals("{orders=[tenant-0/0]}", served, "the legacy answer is served");
                assertEquals(1, gateway.mismatchCount());
                assertEquals("{orders=[]}", gateway.mismatches().get(0).modern());

                proceed.countDown();
                await().atMost(WAIT).until(() -> sync.synced() == 1);
                gateway.handle(new ApiRequest("GET /orders", "tenant-0", 0));
                assertEquals(1, gateway.mismatchCount(), "once the sync caught up, the answers agree");
            }
        }
    }

    @Test
    void aProjectionRebuiltWhileOrdersKeepComingAndStartedAgainAfterARestartHoldsEveryOrderOnceInKeyOrder() throws Exception {
        String topic = SharedKafkaBroker.unique("orders");
        String name = SharedKafkaBroker.unique("orders-by-customer");
        createTopic(topic);
        // Per customer, the orders applied in sequence: a redelivered one is skipped (idempotent, as the docs ask), so
        // an order lost or out of order shows as a gap in the list.
        ProjectionDefinition<Map<String, List<Integer>>> definition =
                ProjectionDefinition.<Map<String, List<Integer>>>builder(ConcurrentHashMap::new)
                        .on(topic, OrderPlaced.class, (model, event, ctx) -> model.merge(event.customer(), List.of(event.seq()),
                                (applied, next) -> next.get(0) <= applied.get(applied.size() - 1) ? applied : concat(applied, next)))
                        .build();
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             Projection<Map<String, List<Integer>>> projection =
                     Projection.<Map<String, List<Integer>>>create(bus, name).start(definition)) {
            publish(bus, topic, 0, 5);
            await().atMost(WAIT).until(() -> projection.readModel().equals(expected(5)));

            Projection.Rebuild<Map<String, List<Integer>>> rebuild = projection.rebuild();
            publish(bus, topic, 5, 10); // queries keep reading version 1, which keeps up meanwhile
            rebuild.swapped().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertEquals(2, projection.version());
            await().atMost(WAIT).until(() -> projection.readModel().equals(expected(10)));
        }
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka)) {
            publish(bus, topic, 10, 12); // while the application is down
        }
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             Projection<Map<String, List<Integer>>> projection =
                     Projection.<Map<String, List<Integer>>>create(bus, name).start(definition)) {
            assertEquals(3, projection.version(), "the first version whose groups never read the topic");
            await().atMost(WAIT).until(() -> projection.readModel().equals(expected(12)));
        }
    }

    private static List<Integer> concat(List<Integer> applied, List<Integer> next) {
        List<Integer> all = new ArrayList<>(applied);
        all.addAll(next);
        return List.copyOf(all);
    }

    private static Map<String, List<Integer>> expected(int count) {
        Map<String, List<Integer>> expected = new TreeMap<>();
        TENANTS.forEach(c -> expected.put(c, IntStream.range(0, count).boxed().toList()));
        return expected;
    }

    private static void publish(EventBus bus, String topic, int fromSeq, int toSeq) {
        for (int seq = fromSeq; seq < toSeq; seq++) {
            for (String customer : TENANTS) {
                bus.publish(topic, customer, new OrderPlaced(customer, seq)).toCompletableFuture().join();
            }
        }
    }
}
