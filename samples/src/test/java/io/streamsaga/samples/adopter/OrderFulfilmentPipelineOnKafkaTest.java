package io.streamsaga.samples.adopter;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.FileSystemPayloadStore;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.aggregator.JdbcAggregationStore;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SequenceInfo;
import io.streamsaga.splitter.SplitPart;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import javax.sql.DataSource;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.streamsaga.samples.adopter.KafkaServices.consumed;
import static io.streamsaga.samples.adopter.KafkaServices.number;
import static io.streamsaga.samples.adopter.KafkaServices.update;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An event-driven order-fulfilment pipeline built the way an adopter builds one from the docs alone (README,
 * docs/patterns.md, docs/architectures.md, docs/durability.md, docs/kafka.md), on the real Kafka broker of
 * saga-kafka-embedded and PostgreSQL (saga-jdbc's embedded server): the shop publishes an order with its attachment
 * through a {@link ClaimCheckInterceptor} (a file-system payload store the services share, only a reference on the
 * bus); a splitter service splits it into one {@code item-requested} per line with {@link EventSplitter}; the
 * warehouse service picks each line behind a {@link JdbcInbox} (the pick and the inbox row in one transaction) and
 * appends its result, with the line's sequence headers, to its {@link JdbcOutbox}, published by an
 * {@link OutboxRelay}; the fulfilment service's {@link EventAggregator} (over a {@link JdbcAggregationStore}) turns the
 * results of one order into one shipment, on the sequence's end or, partial, at its timeout (a virtual clock); a CQRS
 * {@link Projection} keeps a read model of the orders, read after {@link Projection#caughtUpToNow()}. The tests wait
 * on futures, latches, stored state and committed offsets, never on time.
 */
class OrderFulfilmentPipelineOnKafkaTest {
    static final Duration WAIT = Duration.ofSeconds(30);
    /** Over Kafka's default 1 MiB record limit, so it can only travel through the claim check. */
    static final int LARGE_ATTACHMENT = 1_200_000;

    @RegisterExtension
    static final DatabaseExtension WAREHOUSE_DB = DatabaseExtension.postgres();
    @RegisterExtension
    static final DatabaseExtension FULFILMENT_DB = DatabaseExtension.postgres();

    record OrderLine(String sku, int quantity) {
    }

    @EventType("order-placed")
    record OrderPlaced(String orderId, List<OrderLine> lines, String attachment) {
    }

    @EventType("item-requested")
    record ItemRequested(String orderId, int line, String sku, int quantity) {
    }

    @EventType("item-picked")
    record ItemPicked(String orderId, int line, String sku, int quantity) {
    }

    @EventType("shipment-ready")
    record ShipmentReady(String orderId, List<Integer> lines, boolean partial) {
    }

    /** The warehouse no longer stocks the SKU: no retry helps, the line is dead-lettered at once. */
    static final class Discontinued extends RuntimeException {
        Discontinued(String sku) {
            super(sku + " is discontinued");
        }
    }

    static final TypeRegistry TYPES = TypeRegistry.builder()
            .register(OrderPlaced.class).register(ItemRequested.class).register(ItemPicked.class)
            .register(ShipmentReady.class)
            .build();

    static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    static final String ORDERS = "orders-" + RUN;
    static final String ITEMS = "order-items-" + RUN;
    static final String PICKED = "items-picked-" + RUN;
    static final String SHIPMENTS = "shipments-" + RUN;
    static final String WAREHOUSE_GROUP = "warehouse";
    static final String DISCONTINUED = "vinyl-8-track";

    /**
     * The warehouse: picks each line once, whatever the deliveries. The pick, the inbox row and the result in the
     * outbox commit together; the result carries the line's sequence headers, so the aggregator downstream knows how
     * many results make the order.
     */
    static final class Warehouse {
        final EventBus bus;
        final JdbcTransactions tx;
        final JdbcInbox inbox;
        final JdbcOutbox outbox;
        /** Calls of the handler past the inbox, by message id. */
        final Map<String, AtomicInteger> handled = new ConcurrentHashMap<>();
        final Map<String, Message> firstDeliveries = new ConcurrentHashMap<>();
        /** A line held in its handler until the test counts down, once: "orderId/line". */
        volatile String hold;
        final CountDownLatch holding = new CountDownLatch(1);
        final CountDownLatch released = new CountDownLatch(1);
        volatile Subscription subscription;

        Warehouse(DataSource db, EventBus bus) {
            this.bus = bus;
            tx = new JdbcTransactions(db);
            tx.run(c -> c.createStatement().execute("CREATE TABLE picks (order_id VARCHAR(100) NOT NULL,"
                    + " line INT NOT NULL, sku VARCHAR(50) NOT NULL, quantity INT NOT NULL,"
                    + " PRIMARY KEY (order_id, line))"));
            inbox = JdbcInbox.create(db, java.time.Clock.systemUTC());
            outbox = JdbcOutbox.builder(db).eventBus(bus).build();
        }

        void start() {
            subscription = bus.subscribe(WAREHOUSE_GROUP, ITEMS, ItemRequested.class,
                    inbox.handler((item, ctx, connection) -> pick(item, ctx.message(), connection)));
        }

        private void pick(ItemRequested item, Message message, Connection connection) throws Exception {
            handled.computeIfAbsent(message.id(), id -> new AtomicInteger()).incrementAndGet();
            firstDeliveries.putIfAbsent(item.orderId() + "/" + item.line(), message);
            if ((item.orderId() + "/" + item.line()).equals(hold)) {
                hold = null;
                holding.countDown();
                released.await(); // the restart's close() interrupts it: the transaction rolls back
            }
            if (item.sku().equals(DISCONTINUED)) {
                throw new Discontinued(item.sku());
            }
            update(connection, "INSERT INTO picks VALUES (?, " + item.line() + ", ?, " + item.quantity() + ")",
                    item.orderId(), item.sku());
            outbox.append(connection, PICKED, item.orderId(),
                    new ItemPicked(item.orderId(), item.line(), item.sku(), item.quantity()),
                    SequenceInfo.of(message).map(SequenceInfo::headers).orElseThrow());
        }

        long picks(String orderId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM picks WHERE order_id = ?", orderId));
        }

        /** The results appended for an order: one per line picked, however often a line was delivered. */
        long results(String orderId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM ss_outbox WHERE message_key = ?", orderId));
        }
    }

    /** The read model: one row per order, each handler setting its own fields, so arrival order does not matter. */
    static final class OrderViews {
        final Map<String, OrderView> rows = new ConcurrentHashMap<>();

        void placed(OrderPlaced order) {
            rows.merge(order.orderId(), new OrderView(order.orderId(), order.lines().size(),
                    order.attachment().length(), null, List.of()), (old, placed) -> new OrderView(old.orderId(),
                    placed.lines(), placed.attachmentChars(), old.shipment(), old.shippedLines()));
        }

        void shipped(ShipmentReady shipment) {
            String status = shipment.partial() ? "PARTIALLY_SHIPPED" : "SHIPPED";
            rows.merge(shipment.orderId(), new OrderView(shipment.orderId(), 0, 0, status, shipment.lines()),
                    (old, ignored) -> new OrderView(old.orderId(), old.lines(), old.attachmentChars(), status,
                            shipment.lines()));
        }
    }

    record OrderView(String orderId, int lines, int attachmentChars, String shipment, List<Integer> shippedLines) {
    }

    /** The payload store the services share; deleted after the services closed. */
    @TempDir
    static Path attachmentsDir;
    private static KafkaServices services;
    private static EventBus shopBus;
    private static Warehouse warehouse;
    private static EventAggregator fulfilment;
    private static Projection<OrderViews> views;
    private static final VirtualScheduler fulfilmentClock = new VirtualScheduler();
    private static final KafkaServices.Signals signals = new KafkaServices.Signals(WAIT);
    private static final Map<String, AtomicInteger> shipments = new ConcurrentHashMap<>();

    static EventBus bus(String service, EventBus.Builder builder) {
        return services.closeAtEnd(builder.types(TYPES)
                .retryPolicy(RetryPolicy.builder().nonRetryable(Discontinued.class).build())
                .build());
    }

    /** A bus whose interceptor stores large payloads in {@code store} and resolves the references it receives. */
    static EventBus claimCheckedBus(String service, FileSystemPayloadStore store) {
        KafkaTransport transport = services.transport(service);
        ClaimCheckInterceptor claimCheck = services.closeAtEnd(ClaimCheckInterceptor.builder(store, transport)
                .build());
        return bus(service, EventBus.builder(transport).interceptor(claimCheck));
    }

    @BeforeAll
    static void startTheServices() throws Exception {
        services = KafkaServices.start();
        DataSource warehouseDb = WAREHOUSE_DB.database().dataSource();
        DataSource fulfilmentDb = FULFILMENT_DB.database().dataSource();
        JdbcSchema.of(warehouseDb).migrate();
        JdbcSchema.of(fulfilmentDb).migrate();
        FileSystemPayloadStore attachments = new FileSystemPayloadStore(attachmentsDir);

        shopBus = claimCheckedBus("shop", attachments);

        EventBus splitterBus = claimCheckedBus("splitter", attachments);
        EventSplitter splitter = EventSplitter.of(splitterBus);
        splitterBus.subscribe("order-splitter", ORDERS, OrderPlaced.class, (order, ctx) -> {
            List<SplitPart> parts = new ArrayList<>();
            for (int i = 0; i < order.lines().size(); i++) {
                OrderLine line = order.lines().get(i);
                parts.add(new SplitPart(ITEMS, order.orderId(),
                        new ItemRequested(order.orderId(), i + 1, line.sku(), line.quantity())));
            }
            splitter.split(order.orderId(), parts).toCompletableFuture().join();
        });

        // A handler still running when its subscription closes is interrupted after closeTimeout (10 s by default).
        EventBus warehouseBus = bus("warehouse", EventBus.builder(services.closeAtEnd(KafkaTransport.builder()
                .bootstrapServers(services.bootstrapServers()).clientIdPrefix("warehouse")
                .closeTimeout(Duration.ofSeconds(1)).build())));
        warehouse = new Warehouse(warehouseDb, warehouseBus);
        warehouse.start();
        services.closeAtEnd(OutboxRelay.builder(warehouseDb).eventBus(warehouseBus).name("warehouse")
                .pollInterval(Duration.ofMillis(20)).build()).start();

        EventBus fulfilmentBus = bus("fulfilment",
                EventBus.builder(services.transport("fulfilment")).scheduler(fulfilmentClock));
        fulfilment = services.closeAtEnd(EventAggregator.builder(fulfilmentBus,
                        JdbcAggregationStore.create(fulfilmentDb))
                .name("shipments")                 // groups by the splitter's sequence id, the order id
                .completeOnSequenceEnd()
                .timeout(Duration.ofMinutes(15), TimeoutPolicy.RELEASE_PARTIAL)
                .onRelease(aggregate -> ship(fulfilmentBus, aggregate))
                .build());
        fulfilment.subscribe("fulfilment", PICKED);

        views = services.closeAtEnd(Projection.<OrderViews>create(claimCheckedBus("order-views", attachments),
                "order-views-" + RUN).start(ProjectionDefinition.builder(OrderViews::new)
                .on(ORDERS, OrderPlaced.class, (model, order, ctx) -> model.placed(order))
                .on(SHIPMENTS, ShipmentReady.class, (model, shipment, ctx) -> model.shipped(shipment))
                .build()));

        // Operations: the dead letters of the warehouse, and a wire tap of the orders as they travel (no interceptor).
        EventBus operations = bus("operations", EventBus.builder(services.transport("operations")));
        operations.subscribe("dead-letter-watch", ITEMS + ".DLT", Message.class,
                (dead, ctx) -> signals.fire("dead:" + dead.key(), dead));
        operations.subscribe("wire-tap", ORDERS, Message.class,
                (record, ctx) -> signals.fire("wire:" + record.key(), record));

        // One order first, so that every topic exists and every group holds its partitions before the tests run.
        String warmUp = place("warm-up", 10, line("pen", 1));
        awaitShipped(warmUp);
    }

    @AfterAll
    static void stopTheServices() throws Exception {
        services.close();
    }

    /** The release: one shipment per order, under an id derived from the order, so a repeated release is a copy. */
    static void ship(EventBus bus, Aggregate aggregate) {
        List<Integer> lines = aggregate.events(ItemPicked.class).stream().map(ItemPicked::line).sorted().toList();
        shipments.computeIfAbsent(aggregate.key(), k -> new AtomicInteger()).incrementAndGet();
        bus.publish(Message.builder(SHIPMENTS).id("shipment-" + aggregate.key()).key(aggregate.key())
                .type("shipment-ready").payload(new ShipmentReady(aggregate.key(), lines, aggregate.partial()))
                .build());
    }

    static OrderLine line(String sku, int quantity) {
        return new OrderLine(sku, quantity);
    }

    static String place(String prefix, int attachmentChars, OrderLine... lines) {
        return placeAs(prefix + "-" + UUID.randomUUID().toString().substring(0, 8), attachmentChars, lines);
    }

    static String placeAs(String orderId, int attachmentChars, OrderLine... lines) {
        shopBus.publish(ORDERS, orderId, new OrderPlaced(orderId, List.of(lines), "x".repeat(attachmentChars)))
                .toCompletableFuture().join();
        return orderId;
    }

    /** Waits until the aggregator recorded the order's group with its outcome, then for the view to catch up. */
    static OrderView awaitShipped(String orderId) throws Exception {
        await().atMost(WAIT).until(() -> fulfilment.group(orderId).map(AggregationGroup::state)
                .filter(state -> state == GroupState.COMPLETED || state == GroupState.TIMED_OUT_RELEASED)
                .isPresent());
        views.caughtUpToNow().toCompletableFuture().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        return views.readModel().rows.get(orderId);
    }

    @Test
    void anOrderWithALargeAttachmentTravelsByReferenceAndShipsOnceWithEveryLine() throws Exception {
        String orderId = place("large", LARGE_ATTACHMENT, line("book", 2), line("lamp", 1), line("mug", 4));

        Message onTheWire = (Message) signals.await("wire:" + orderId);
        assertTrue(onTheWire.header(PayloadReference.ID_HEADER).isPresent(), "only a reference travels");
        assertTrue(((byte[]) onTheWire.payload()).length < 1_000, "the record holds no attachment");

        OrderView view = awaitShipped(orderId);
        assertEquals(new OrderView(orderId, 3, LARGE_ATTACHMENT, "SHIPPED", List.of(1, 2, 3)), view);
        assertEquals(3, warehouse.picks(orderId));
        assertEquals(1, shipments.get(orderId).get());
    }

    @Test
    void aLineDeliveredAgainByTheBrokerIsPickedOnceAndTheOrderShippedOnce() throws Exception {
        String orderId = place("redelivered", 100, line("book", 1), line("lamp", 1));
        awaitShipped(orderId);

        Message first = warehouse.firstDeliveries.get(orderId + "/1");
        warehouse.bus.publish(first).toCompletableFuture().join(); // the same record again, as after a lost commit
        await().atMost(WAIT).until(() -> consumed(warehouse.bus, WAREHOUSE_GROUP, ITEMS));

        assertEquals(1, warehouse.handled.get(first.id()).get(), "the inbox skipped the redelivery");
        assertEquals(2, warehouse.picks(orderId));
        assertEquals(2, warehouse.results(orderId));
        assertEquals(1, shipments.get(orderId).get());
    }

    @Test
    void anUndecodableLineIsDeadLetteredWithItsPayloadAndTheLinesAfterItAreStillPicked() throws Exception {
        // A line of a producer with a schema bug (a word for the line's number), then an order under the same key,
        // so its lines come after the bad one in the same partition.
        String orderId = "garbled-" + UUID.randomUUID().toString().substring(0, 8);
        byte[] garbled = ("{\"orderId\": \"" + orderId + "\", \"line\": \"one\", \"sku\": \"book\", \"quantity\": 1}")
                .getBytes(StandardCharsets.UTF_8);
        warehouse.bus.publish(Message.builder(ITEMS).key(orderId).type("item-requested").payload(garbled).build())
                .toCompletableFuture().join();
        placeAs(orderId, 100, line("book", 1), line("lamp", 1));

        Message dead = (Message) signals.await("dead:" + orderId);
        assertEquals("undecodable", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals(WAREHOUSE_GROUP, dead.header(MessageHeaders.DLT_ORIGINAL_GROUP).orElseThrow());
        assertTrue(Arrays.equals(garbled, (byte[]) dead.payload()), "the dead letter keeps the record as it was");
        assertEquals("SHIPPED", awaitShipped(orderId).shipment());
        assertEquals(2, warehouse.picks(orderId));
    }

    @Test
    void aLineThatCanNeverBePickedIsDeadLetteredAndTheOrderShipsPartialAtItsTimeout() throws Exception {
        String orderId = place("partial", 100, line("book", 1), line(DISCONTINUED, 1), line("lamp", 2));

        Message dead = (Message) signals.await("dead:" + orderId);
        assertEquals("handler-failed", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals(Discontinued.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("1", dead.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow(), "not retried");
        // Both other results are in the group before the clock moves, so the partial shipment holds them both.
        await().atMost(WAIT).until(() -> fulfilment.group(orderId).map(AggregationGroup::size).orElse(0) == 2);
        assertEquals(GroupState.OPEN, fulfilment.group(orderId).orElseThrow().state());
        await().atMost(WAIT).until(() -> {
            fulfilmentClock.advance(Duration.ofMinutes(16));
            return fulfilment.group(orderId).orElseThrow().state() == GroupState.TIMED_OUT_RELEASED;
        });

        OrderView view = awaitShipped(orderId);
        assertEquals("PARTIALLY_SHIPPED", view.shipment());
        assertEquals(List.of(1, 3), view.shippedLines());
        assertEquals(2, warehouse.picks(orderId));
        assertEquals(1, shipments.get(orderId).get());
    }

    @Test
    void aWarehouseRestartedMidOrderLosesNoLineAndPicksNoneTwice() throws Exception {
        String orderId = "restart-" + UUID.randomUUID().toString().substring(0, 8);
        warehouse.hold = orderId + "/3";
        placeAs(orderId, 1, line("book", 1), line("lamp", 1), line("mug", 1), line("pen", 1), line("cup", 1));
        assertTrue(warehouse.holding.await(WAIT.toMillis(), TimeUnit.MILLISECONDS), "line 3 reached the warehouse");

        warehouse.subscription.close(); // the warehouse goes down with line 3 in its handler
        String whileDown = place("while-down", 100, line("book", 1), line("lamp", 1));
        warehouse.start(); // back in its group: resumes after what its predecessor committed

        assertEquals(new OrderView(orderId, 5, 1, "SHIPPED", List.of(1, 2, 3, 4, 5)), awaitShipped(orderId));
        assertEquals("SHIPPED", awaitShipped(whileDown).shipment());
        assertEquals(5, warehouse.picks(orderId));
        assertEquals(5, warehouse.results(orderId));
        assertEquals(1, shipments.get(orderId).get());
        Message third = warehouse.firstDeliveries.get(orderId + "/3");
        assertEquals(2, warehouse.handled.get(third.id()).get(), "line 3 rolled back by the restart, then picked");
    }
}
