package io.streamsaga.samples.adopter;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A choreographed order flow built the way an adopter builds one from the docs alone (README, docs/choreography.md,
 * docs/patterns.md, docs/architectures.md, docs/kafka.md), on the real Kafka broker of saga-kafka-embedded: an Order,
 * an Inventory and a Payment service, each on a {@link KafkaTransport} and bus of its own, react to each other's
 * events with no coordinator (order placed, inventory reserved or rejected, payment completed or failed, order
 * confirmed or cancelled, the reservation released as the compensation); the Payment service charges behind an
 * {@link IdempotentConsumer}; a CQRS {@link Projection} of every order's status is fed by the events and rebuilt by
 * replay; a Shipping service's consumer is restarted in its group. The flows wait on futures the services complete,
 * never on time.
 */
class ChoreographedOrdersOnKafkaTest {
    static final Duration WAIT = Duration.ofSeconds(30);

    @EventType("order-placed")
    record OrderPlaced(String orderId, String sku, int quantity, long amountCents) {
    }

    @EventType("inventory-reserved")
    record InventoryReserved(String orderId, String sku, int quantity, long amountCents) {
    }

    @EventType("inventory-rejected")
    record InventoryRejected(String orderId, String reason) {
    }

    @EventType("payment-completed")
    record PaymentCompleted(String orderId, String paymentId, long amountCents) {
    }

    @EventType("payment-failed")
    record PaymentFailed(String orderId, String reason) {
    }

    @EventType("order-confirmed")
    record OrderConfirmed(String orderId) {
    }

    @EventType("order-cancelled")
    record OrderCancelled(String orderId, String reason) {
    }

    @EventType("inventory-released")
    record InventoryReleased(String orderId, String sku, int quantity) {
    }

    static final TypeRegistry TYPES = TypeRegistry.builder()
            .register(OrderPlaced.class).register(InventoryReserved.class).register(InventoryRejected.class)
            .register(PaymentCompleted.class).register(PaymentFailed.class).register(OrderConfirmed.class)
            .register(OrderCancelled.class).register(InventoryReleased.class)
            .build();

    /**
     * The Inventory service: reserves stock for a placed order, or rejects it; releases the reservation when the
     * order is cancelled (the compensation). Reservations are kept by order id, so a redelivered order reserves
     * nothing twice. A quantity below 1 is a message it cannot handle: it throws, and the bus dead-letters it.
     */
    public static final class InventoryService {
        private final EventBus bus;
        private final Map<String, Integer> stock = new ConcurrentHashMap<>();
        private final Map<String, OrderPlaced> reservations = new ConcurrentHashMap<>();

        InventoryService(EventBus bus, Map<String, Integer> stock) {
            this.bus = bus;
            this.stock.putAll(stock);
        }

        @EventPattern("order-placed")
        public synchronized void reserve(OrderPlaced order) {
            if (order.quantity() < 1) {
                throw new IllegalArgumentException("order " + order.orderId() + " has quantity " + order.quantity());
            }
            if (reservations.containsKey(order.orderId())) {
                return; // a redelivery: reserved already
            }
            int available = stock.getOrDefault(order.sku(), 0);
            if (available < order.quantity()) {
                bus.publish("inventory-rejected", order.orderId(), new InventoryRejected(order.orderId(),
                        order.sku() + " is out of stock")).toCompletableFuture().join();
                return;
            }
            stock.put(order.sku(), available - order.quantity());
            reservations.put(order.orderId(), order);
            bus.publish("inventory-reserved", order.orderId(), new InventoryReserved(order.orderId(), order.sku(),
                    order.quantity(), order.amountCents())).toCompletableFuture().join();
        }

        @EventPattern("order-cancelled")
        public synchronized void release(OrderCancelled cancelled) {
            OrderPlaced order = reservations.remove(cancelled.orderId());
            if (order != null) {
                stock.merge(order.sku(), order.quantity(), Integer::sum);
                bus.publish("inventory-released", order.orderId(), new InventoryReleased(order.orderId(), order.sku(),
                        order.quantity())).toCompletableFuture().join();
            }
        }

        synchronized int stockOf(String sku) {
            return stock.getOrDefault(sku, 0);
        }
    }

    /**
     * The Payment service: charges a reserved order, or declines it over the card limit. It is subscribed by hand
     * ({@code bus.subscribe}) with its handler wrapped by an {@link IdempotentConsumer}; an {@code @EventPattern} service
     * gets the same with {@code register(group, service, RegistrationOptions.builder().around(once::wrap).build())}. A
     * delivery of a message id it charged already is skipped by the consumer.
     */
    static final class PaymentService {
        final Map<String, AtomicInteger> charges = new ConcurrentHashMap<>();
        final Map<String, Message> firstDeliveries = new ConcurrentHashMap<>();
        private final EventBus bus;
        private final long limitCents;

        PaymentService(EventBus bus, long limitCents) {
            this.bus = bus;
            this.limitCents = limitCents;
        }

        void charge(InventoryReserved reserved, io.streamsaga.bus.DeliveryContext ctx) {
            firstDeliveries.putIfAbsent(reserved.orderId(), ctx.message());
            if (reserved.amountCents() > limitCents) {
                bus.publish("payment-failed", reserved.orderId(), new PaymentFailed(reserved.orderId(),
                        "card limit exceeded")).toCompletableFuture().join();
                return;
            }
            charges.computeIfAbsent(reserved.orderId(), id -> new AtomicInteger()).incrementAndGet();
            bus.publish("payment-completed", reserved.orderId(), new PaymentCompleted(reserved.orderId(),
                    "pay-" + reserved.orderId(), reserved.amountCents())).toCompletableFuture().join();
        }
    }

    /** The Order service: confirms a paid order, cancels one whose payment failed or whose stock was short. */
    public static final class OrderService {
        private final EventBus bus;

        OrderService(EventBus bus) {
            this.bus = bus;
        }

        @EventPattern("payment-completed")
        public void confirm(PaymentCompleted paid) {
            bus.publish("order-confirmed", paid.orderId(), new OrderConfirmed(paid.orderId())).toCompletableFuture().join();
        }

        @EventPattern("payment-failed")
        public void cancelUnpaid(PaymentFailed failed) {
            bus.publish("order-cancelled", failed.orderId(), new OrderCancelled(failed.orderId(), failed.reason()))
                    .toCompletableFuture().join();
        }

        @EventPattern("inventory-rejected")
        public void cancelUnreserved(InventoryRejected rejected) {
            bus.publish("order-cancelled", rejected.orderId(), new OrderCancelled(rejected.orderId(), rejected.reason()))
                    .toCompletableFuture().join();
        }
    }

    /** One order's row in the read model. */
    record OrderView(String orderId, String status, long amountCents, String paymentId, String reason, boolean released) {
        static OrderView empty(String orderId) {
            return new OrderView(orderId, "UNKNOWN", 0, null, null, false);
        }

        /** A terminal status wins over PLACED whatever order the topics are read in. */
        OrderView withStatus(String newStatus) {
            boolean terminal = status.equals("CONFIRMED") || status.equals("CANCELLED");
            return terminal ? this : new OrderView(orderId, newStatus, amountCents, paymentId, reason, released);
        }
    }

    /**
     * The read model: one row per order. A projection reads each topic under a group of its own, so an order's events
     * arrive in any order across topics; every handler sets fields rather than adds, so a redelivery and any order of
     * arrival give the same row.
     */
    static final class OrderViews {
        final Map<String, OrderView> rows = new ConcurrentHashMap<>();
        private final KafkaServices.Signals signals;

        OrderViews(KafkaServices.Signals signals) {
            this.signals = signals;
        }

        void update(String orderId, java.util.function.UnaryOperator<OrderView> change) {
            OrderView row = rows.compute(orderId, (id, old) -> change.apply(old == null ? OrderView.empty(id) : old));
            if (row.status().equals("CONFIRMED") || row.status().equals("CANCELLED")) {
                signals.fire("view:" + orderId + ":" + row.status(), row);
            }
            if (row.released()) {
                signals.fire("released:" + orderId, row);
            }
        }

        Map<String, OrderView> rowsOf(List<String> orderIds) {
            Map<String, OrderView> some = new HashMap<>();
            orderIds.forEach(id -> some.put(id, rows.get(id)));
            return some;
        }
    }

    static ProjectionDefinition<OrderViews> orderViews(KafkaServices.Signals signals) {
        return ProjectionDefinition.builder(() -> new OrderViews(signals))
                .on("order-placed", OrderPlaced.class, (views, e, ctx) -> views.update(e.orderId(), row ->
                        new OrderView(row.orderId(), row.status().equals("UNKNOWN") ? "PLACED" : row.status(),
                                e.amountCents(), row.paymentId(), row.reason(), row.released())))
                .on("payment-completed", PaymentCompleted.class, (views, e, ctx) -> views.update(e.orderId(), row ->
                        new OrderView(row.orderId(), row.status(), row.amountCents(), e.paymentId(), row.reason(), row.released())))
                .on("order-confirmed", OrderConfirmed.class, (views, e, ctx) -> views.update(e.orderId(), row ->
                        row.withStatus("CONFIRMED")))
                .on("order-cancelled", OrderCancelled.class, (views, e, ctx) -> views.update(e.orderId(), row -> {
                    OrderView cancelled = row.withStatus("CANCELLED");
                    return new OrderView(cancelled.orderId(), cancelled.status(), cancelled.amountCents(),
                            cancelled.paymentId(), e.reason(), cancelled.released());
                }))
                .on("inventory-released", InventoryReleased.class, (views, e, ctx) -> views.update(e.orderId(), row ->
                        new OrderView(row.orderId(), row.status(), row.amountCents(), row.paymentId(), row.reason(), true)))
                .build();
    }

    private static KafkaServices services;
    private static final KafkaServices.Signals signals = new KafkaServices.Signals(WAIT);
    private static final String run = UUID.randomUUID().toString().substring(0, 8);
    private static EventBus orderBus;
    private static EventBus paymentBus;
    private static EventBus shippingBus;
    private static InventoryService inventory;
    private static PaymentService payment;
    private static Projection<OrderViews> projection;
    private static final VirtualScheduler fulfilmentClock = new VirtualScheduler();
    private static EventAggregator fulfilment;

    static EventBus bus(String service, MetricsRecorder metrics) {
        return bus(service, metrics, EventBus.builder(kafka(service)));
    }

    static KafkaTransport kafka(String service) {
        return services.transport(service);
    }

    static EventBus bus(String service, MetricsRecorder metrics, EventBus.Builder builder) {
        // a handler that cannot handle its message (IllegalArgumentException) is dead-lettered at once, not retried
        EventBus bus = builder.types(TYPES).metrics(metrics)
                .retryPolicy(RetryPolicy.builder().nonRetryable(IllegalArgumentException.class).build())
                .build();
        return services.closeAtEnd(bus);
    }

    @BeforeAll
    static void startTheShop() {
        services = KafkaServices.start();
        EventBus inventoryBus = bus("inventory-service", MetricsRecorder.NOOP);
        paymentBus = bus("payment-service", new MetricsRecorder() {
            @Override
            public void increment(String name, Map<String, String> tags) {
                if (name.equals(IdempotentConsumer.DUPLICATES_METRIC)) {
                    signals.fire("duplicate-skipped", tags);
                }
            }
        });
        orderBus = bus("order-service", MetricsRecorder.NOOP);
        shippingBus = bus("shipping-service", MetricsRecorder.NOOP);
        EventBus viewsBus = bus("order-views", MetricsRecorder.NOOP);

        inventory = new InventoryService(inventoryBus, Map.of("book", 100, "lamp", 1));
        inventoryBus.register("inventory-service-" + run, inventory);
        orderBus.register("order-service-" + run, new OrderService(orderBus));
        payment = new PaymentService(paymentBus, 50_000);
        InMemoryDeduplicationStore processed = InMemoryDeduplicationStore.builder().name("payment")
                .window(Duration.ofDays(7)).maxEntries(100_000).build();
        IdempotentConsumer once = IdempotentConsumer.builder(paymentBus, processed).build();
        paymentBus.subscribe("payment-service-" + run, "inventory-reserved", InventoryReserved.class,
                once.wrap(payment::charge));
        for (String topic : List.of("order-placed.DLT", "inventory-reserved.DLT")) {
            orderBus.subscribe("dead-letters-" + run, topic, Message.class,
                    (dead, ctx) -> signals.fire(topic + ":" + dead.key(), dead));
        }
        // The fulfilment aggregator: a reservation and its payment make a parcel to ship; a reservation left unpaid
        // for 15 minutes is dead-lettered. Its bus runs on a virtual clock, so the test moves time on.
        EventBus fulfilmentBus = bus("fulfilment", MetricsRecorder.NOOP,
                EventBus.builder(kafka("fulfilment")).scheduler(fulfilmentClock));
        fulfilment = EventAggregator.builder(fulfilmentBus, new InMemoryAggregationStore())
                .name("fulfilment")
                .correlateByField("orderId")
                .completeWhen(group -> group.hasTypes("inventory-reserved", "payment-completed"))
                .timeout(Duration.ofMinutes(15), TimeoutPolicy.DEAD_LETTER)
                .onRelease(parcel -> signals.fire("fulfilled:" + parcel.key(), parcel))
                .build();
        fulfilment.subscribe("fulfilment-" + run, "inventory-reserved", "payment-completed");
        services.closeAtEnd(fulfilment);
        projection = Projection.<OrderViews>create(viewsBus, "order-views-" + run).start(orderViews(signals));
        services.closeAtEnd(projection);
    }

    @AfterAll
    static void stopTheShop() throws Exception {
        services.close();
    }

    static String newOrderId(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static void place(String orderId, String sku, int quantity, long amountCents) {
        orderBus.publish("order-placed", orderId, new OrderPlaced(orderId, sku, quantity, amountCents))
                .toCompletableFuture().join();
    }

    /** Waits until the read model has applied every event published so far (read-your-writes, no polling). */
    static void awaitTheViewUpToNow() throws Exception {
        projection.caughtUpToNow().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }

    static OrderView viewOf(String orderId) {
        return projection.readModel().rows.get(orderId);
    }

    @Test
    void aPlacedOrderInStockAndWithinTheCardLimitIsReservedChargedAndConfirmed() throws Exception {
        String orderId = newOrderId("happy");
        int booksBefore = inventory.stockOf("book");

        place(orderId, "book", 2, 4_000);

        OrderView row = (OrderView) signals.await("view:" + orderId + ":CONFIRMED");
        awaitTheViewUpToNow(); // the order's other events, on other topics, were published before its confirmation
        assertEquals(new OrderView(orderId, "CONFIRMED", 4_000, "pay-" + orderId, null, false), viewOf(orderId), row.toString());
        assertEquals(booksBefore - 2, inventory.stockOf("book"));
        assertEquals(1, payment.charges.get(orderId).get());
    }

    @Test
    void aDeclinedPaymentCancelsTheOrderAndReleasesItsReservedStock() throws Exception {
        String orderId = newOrderId("declined");
        int booksBefore = inventory.stockOf("book");

        place(orderId, "book", 1, 90_000); // over the card limit

        signals.await("view:" + orderId + ":CANCELLED");
        signals.await("released:" + orderId);
        awaitTheViewUpToNow();
        assertEquals(new OrderView(orderId, "CANCELLED", 90_000, null, "card limit exceeded", true), viewOf(orderId));
        assertEquals(booksBefore, inventory.stockOf("book"), "the compensation gave the stock back");
        assertTrue(!payment.charges.containsKey(orderId));
    }

    @Test
    void anOrderOutOfStockIsRejectedAndCancelledWithNothingToRelease() throws Exception {
        String first = newOrderId("lamp-1");
        place(first, "lamp", 1, 1_000);
        signals.await("view:" + first + ":CONFIRMED");
        String second = newOrderId("lamp-2");

        place(second, "lamp", 1, 1_000); // the only lamp is gone

        signals.await("view:" + second + ":CANCELLED");
        awaitTheViewUpToNow();
        assertEquals(new OrderView(second, "CANCELLED", 1_000, null, "lamp is out of stock", false), viewOf(second));
        assertEquals(0, inventory.stockOf("lamp"));
    }

    @Test
    void aDuplicateDeliveryOfAReservationIsSkippedAndChargesTheCardOnce() throws Exception {
        String orderId = newOrderId("dup");
        place(orderId, "book", 1, 2_500);
        signals.await("view:" + orderId + ":CONFIRMED");
        Message reservation = payment.firstDeliveries.get(orderId);

        // the same message (same id) delivered again, as after a producer retry or a lost commit
        paymentBus.publish(reservation).toCompletableFuture().join();

        signals.await("duplicate-skipped");
        assertEquals(1, payment.charges.get(orderId).get());
    }

    @Test
    void aPoisonOrderIsDeadLetteredWithItsErrorAndTheOrderBehindItOnItsKeyIsStillHandled() throws Exception {
        String orderId = newOrderId("poison");

        place(orderId, "book", 0, 1_000); // quantity 0: the inventory service throws
        place(orderId, "book", 1, 1_000); // the corrected order, on the same key, behind it

        Message dead = (Message) signals.await("order-placed.DLT:" + orderId);
        signals.await("view:" + orderId + ":CONFIRMED");
        assertEquals("handler-failed", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals(IllegalArgumentException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("order-placed", dead.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow());
        assertEquals("inventory-service-" + run, dead.header(MessageHeaders.DLT_ORIGINAL_GROUP).orElseThrow());
        assertEquals("1", dead.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow(), "not retried: IllegalArgumentException is not retriable");
        assertEquals(new OrderPlaced(orderId, "book", 0, 1_000), orderBus.codec().decode(dead, OrderPlaced.class),
                "the dead letter holds the original order");
        assertEquals(1, payment.charges.get(orderId).get());
    }

    @Test
    void theReadModelRebuiltByReplayingTheLogEqualsTheOneFedLive() throws Exception {
        List<String> orderIds = List.of(newOrderId("rebuild-ok"), newOrderId("rebuild-declined"));
        place(orderIds.get(0), "book", 1, 3_000);
        place(orderIds.get(1), "book", 1, 70_000);
        signals.await("view:" + orderIds.get(0) + ":CONFIRMED");
        signals.await("released:" + orderIds.get(1));
        awaitTheViewUpToNow();
        Map<String, OrderView> live = projection.readModel().rowsOf(orderIds);
        int liveVersion = projection.version();

        OrderViews rebuilt = projection.rebuild().swapped().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);

        assertEquals(liveVersion + 1, projection.version());
        assertEquals(live, rebuilt.rowsOf(orderIds));
    }

    @Test
    void aShippingConsumerRestartedInItsGroupResumesAfterWhatItsPredecessorCommitted() throws Exception {
        String group = "shipping-" + run;
        List<String> shipped = new CopyOnWriteArrayList<>();
        io.streamsaga.bus.EventHandler<OrderConfirmed> ship = (confirmed, ctx) -> {
            shipped.add(confirmed.orderId());
            signals.fire("shipped:" + confirmed.orderId(), ctx);
        };
        Subscription first = shippingBus.subscribe(group, "order-confirmed", OrderConfirmed.class, ship);
        String before = newOrderId("ship-1");
        place(before, "book", 1, 1_000);
        signals.await("shipped:" + before);
        first.close();

        String whileDown = newOrderId("ship-2");
        place(whileDown, "book", 1, 1_000);
        signals.await("view:" + whileDown + ":CONFIRMED");
        Subscription second = shippingBus.subscribe(group, "order-confirmed", OrderConfirmed.class,
                SubscriptionOptions.defaults(), ship);
        signals.await("shipped:" + whileDown);
        await().atMost(WAIT).until(() -> shippingBus.transport().committedOffsets(group, "order-confirmed")
                .equals(shippingBus.transport().endOffsets("order-confirmed")));
        second.close();

        assertEquals(List.of(before, whileDown), shipped.stream().filter(id -> id.startsWith("ship-")).toList());
    }

    @Test
    void theFulfilmentAggregatorShipsAPaidReservationAndDeadLettersOneLeftUnpaidAtItsTimeout() throws Exception {
        String paid = newOrderId("fulfil-paid");
        String unpaid = newOrderId("fulfil-unpaid");

        place(paid, "book", 1, 1_500);
        place(unpaid, "book", 1, 80_000); // declined: its reservation never gets a payment

        io.streamsaga.aggregator.Aggregate parcel = (io.streamsaga.aggregator.Aggregate) signals.await("fulfilled:" + paid);
        assertEquals(1_500, parcel.first(PaymentCompleted.class).orElseThrow().amountCents());
        // The group is stored before its timer is armed: time moves on until the timeout has run, not just once.
        await().atMost(WAIT).until(() -> {
            fulfilmentClock.advance(Duration.ofMinutes(16));
            return fulfilment.group(unpaid).map(group -> group.state() == GroupState.TIMED_OUT_DEAD_LETTERED).orElse(false);
        });

        Message dead = (Message) signals.await("inventory-reserved.DLT:" + unpaid);
        assertEquals(new InventoryReserved(unpaid, "book", 1, 80_000), orderBus.codec().decode(dead, InventoryReserved.class));
        assertTrue(signals.of("fulfilled:" + unpaid).getNow(null) == null, "an unpaid reservation is never shipped");
    }
}
