package io.streamsaga.samples.adopter;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.streamsaga.samples.adopter.KafkaServices.consumed;
import static io.streamsaga.samples.adopter.KafkaServices.number;
import static io.streamsaga.samples.adopter.KafkaServices.update;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An orchestrated order flow built the way an adopter builds one from the docs alone (README, docs/sagas.md,
 * docs/durability.md, docs/kafka.md), on the real Kafka broker of saga-kafka-embedded and PostgreSQL (saga-jdbc's
 * embedded server, the reference database; each service a schema of its own, as its own database): the Order service
 * runs the OrderSaga (create the order, reserve inventory [remote], process the payment [remote, the pivot], schedule
 * shipping [retriable]) with a {@link SagaOrchestrator} over a {@link JdbcSagaStore} whose commands go through its
 * outbox ({@code transactionalMessages()}) and an {@link OutboxRelay}, with saga ownership; the Inventory and Payment
 * services each have a {@link KafkaTransport} and bus of their own, take commands through a {@link JdbcInbox}, dedupe
 * their effects by the command's {@code saga-idempotency-key}, and reply through their own outbox with
 * {@link SagaMessages#replyHeaders}, so that a reply commits with its effect. The tests wait on saga results, futures
 * and the consumer groups' committed offsets, never on time; the step timeouts are the only real time they spend.
 */
class OrchestratedOrdersOnKafkaTest {
    static final Duration WAIT = Duration.ofSeconds(30);
    /** Each wait for a participant's reply: longer than a round trip over the broker, short for the timeout tests. */
    static final Duration REPLY_TIMEOUT = Duration.ofSeconds(4);
    static final long CARD_LIMIT_CENTS = 50_000;

    @RegisterExtension
    static final DatabaseExtension ORDER_DB = DatabaseExtension.postgres();
    @RegisterExtension
    static final DatabaseExtension INVENTORY_DB = DatabaseExtension.postgres();
    @RegisterExtension
    static final DatabaseExtension PAYMENT_DB = DatabaseExtension.postgres();

    /** The saga data. */
    record OrderData(String orderId, String sku, int quantity, long amountCents, String reservationId,
                     String paymentId, boolean shippingScheduled) {
        OrderData withReservationId(String id) {
            return new OrderData(orderId, sku, quantity, amountCents, id, paymentId, shippingScheduled);
        }

        OrderData withPaymentId(String id) {
            return new OrderData(orderId, sku, quantity, amountCents, reservationId, id, shippingScheduled);
        }

        OrderData withShippingScheduled() {
            return new OrderData(orderId, sku, quantity, amountCents, reservationId, paymentId, true);
        }
    }

    @EventType("reserve-inventory")
    record ReserveInventory(String orderId, String sku, int quantity) {
    }

    /** The next version of the command, sent by an Order service upgraded before the Inventory service. */
    @EventType(value = "reserve-inventory", version = 2)
    record ReserveInventoryV2(String orderId, String sku, int quantity, String warehouse) {
    }

    @EventType("inventory-reserved")
    record InventoryReserved(String orderId, String reservationId) {
    }

    @EventType("release-inventory")
    record ReleaseInventory(String orderId) {
    }

    @EventType("inventory-released")
    record InventoryReleased(String orderId, boolean released) {
    }

    @EventType("process-payment")
    record ProcessPayment(String orderId, long amountCents) {
    }

    @EventType("payment-processed")
    record PaymentProcessed(String orderId, String paymentId, boolean approved, String reason) {
    }

    /** The payment declined: the pivot fails for good and the saga compensates. */
    static final class PaymentDeclined extends RuntimeException {
        PaymentDeclined(String reason) {
            super(reason);
        }
    }

    static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    static final String INVENTORY_COMMANDS = "inventory-commands-" + RUN;
    static final String INVENTORY_RELEASES = "inventory-releases-" + RUN;
    static final String PAYMENT_COMMANDS = "payment-commands-" + RUN;
    static final String REPLIES = "order-saga-replies-" + RUN;
    static final String INVENTORY_GROUP = "inventory-service";

    /** The Order service's database: its orders and shipments, keyed by the saga steps' idempotency keys. */
    static final class Orders {
        final JdbcTransactions tx;

        Orders(DataSource db) {
            tx = new JdbcTransactions(db);
            tx.run(c -> {
                c.createStatement().execute("CREATE TABLE orders (order_key VARCHAR(300) PRIMARY KEY,"
                        + " order_id VARCHAR(100) NOT NULL, status VARCHAR(20) NOT NULL)");
                c.createStatement().execute("CREATE TABLE shipments (shipment_key VARCHAR(300) PRIMARY KEY,"
                        + " order_id VARCHAR(100) NOT NULL)");
            });
        }

        void create(String key, String orderId) {
            tx.run(c -> update(c, "INSERT INTO orders VALUES (?, ?, 'CREATED') ON CONFLICT DO NOTHING", key, orderId));
        }

        void cancel(String key) {
            tx.run(c -> update(c, "UPDATE orders SET status = 'CANCELLED' WHERE order_key = ?", key));
        }

        void scheduleShipping(String key, String orderId) {
            tx.run(c -> update(c, "INSERT INTO shipments VALUES (?, ?) ON CONFLICT DO NOTHING", key, orderId));
        }

        String status(String orderId) {
            return tx.inTransaction(c -> text(c, "SELECT status FROM orders WHERE order_id = ?", orderId));
        }

        long shipments(String orderId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM shipments WHERE order_id = ?", orderId));
        }
    }

    /**
     * The Inventory service, a process of its own: its database (stock, reservations keyed by the reserve step's
     * idempotency key), its bus, its inbox and its outbox, to which each reply is appended in the effect's
     * transaction. A release that arrives before its reservation (the reservation timed out at the orchestrator)
     * leaves a tombstone, so the late reservation takes nothing. Orders can be held (their reservation answered when
     * the test says) and their releases refused (the warehouse system down).
     */
    static final class InventoryService {
        final EventBus bus;
        final JdbcTransactions tx;
        final JdbcOutbox outbox;
        final Set<String> held = ConcurrentHashMap.newKeySet();
        final Map<String, Message> heldCommands = new ConcurrentHashMap<>();
        final Set<String> refusingReleases = ConcurrentHashMap.newKeySet();
        final Map<String, Message> firstCommands = new ConcurrentHashMap<>();
        final Map<String, AtomicInteger> handled = new ConcurrentHashMap<>();

        InventoryService(DataSource db, EventBus bus) {
            this.bus = bus;
            tx = new JdbcTransactions(db);
            tx.run(c -> {
                c.createStatement().execute("CREATE TABLE stock (sku VARCHAR(50) PRIMARY KEY, available INT NOT NULL)");
                c.createStatement().execute("CREATE TABLE reservations (reservation_key VARCHAR(300) PRIMARY KEY,"
                        + " order_id VARCHAR(100) NOT NULL, sku VARCHAR(50), quantity INT,"
                        + " status VARCHAR(20) NOT NULL)");
                c.createStatement().execute("INSERT INTO stock VALUES ('book', 1000)");
            });
            JdbcInbox inbox = JdbcInbox.create(db, java.time.Clock.systemUTC());
            outbox = JdbcOutbox.builder(db).eventBus(bus).build();
            bus.subscribe(INVENTORY_GROUP, INVENTORY_COMMANDS, ReserveInventory.class,
                    inbox.handler((command, ctx, connection) -> reserve(command, ctx.message(), connection)));
            bus.subscribe(INVENTORY_GROUP, INVENTORY_RELEASES, ReleaseInventory.class,
                    inbox.handler((command, ctx, connection) -> release(command, ctx.message(), connection)));
        }

        private void reserve(ReserveInventory command, Message message, Connection connection) throws Exception {
            handled.computeIfAbsent(message.id(), id -> new AtomicInteger()).incrementAndGet();
            firstCommands.putIfAbsent(command.orderId(), message);
            if (held.contains(command.orderId())) {
                heldCommands.put(command.orderId(), message);
                return; // answered later, by answerHeld
            }
            answerReservation(connection, command, message);
        }

        private void answerReservation(Connection connection, ReserveInventory command, Message message)
                throws Exception {
            String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
            String status = text(connection, "SELECT status FROM reservations WHERE reservation_key = ?", key);
            if (status == null) { // a new attempt of the same step finds RESERVED, a late one after a release CANCELLED
                update(connection, "UPDATE stock SET available = available - " + command.quantity() + " WHERE sku = ?",
                        command.sku());
                update(connection, "INSERT INTO reservations VALUES (?, ?, ?, " + command.quantity() + ", 'RESERVED')",
                        key, command.orderId(), command.sku());
            }
            outbox.append(connection, message.header(SagaMessages.REPLY_TOPIC).orElseThrow(), message.key(),
                    new InventoryReserved(command.orderId(), "res-" + command.orderId()),
                    SagaMessages.replyHeaders(message));
        }

        /** Answers the held reservation of {@code orderId} now, in a transaction of its own. */
        void answerHeld(String orderId) {
            held.remove(orderId);
            Message message = heldCommands.remove(orderId);
            ReserveInventory command = bus.codec().decode(message, ReserveInventory.class);
            tx.run(c -> answerReservation(c, command, message));
        }

        private void release(ReleaseInventory command, Message message, Connection connection) throws Exception {
            if (refusingReleases.contains(command.orderId())) {
                outbox.append(connection, message.header(SagaMessages.REPLY_TOPIC).orElseThrow(), message.key(),
                        new InventoryReleased(command.orderId(), false), SagaMessages.replyHeaders(message));
                return;
            }
            // The compensation's saga-idempotency-key is the step's plus /compensation; the reservation is kept
            // under the step's.
            String reservationKey = SagaMessages.stepIdempotencyKey(message);
            String status = text(connection, "SELECT status FROM reservations WHERE reservation_key = ?",
                    reservationKey);
            if ("RESERVED".equals(status)) {
                update(connection, "UPDATE stock SET available = available + (SELECT quantity FROM reservations"
                        + " WHERE reservation_key = ?) WHERE sku = 'book'", reservationKey);
                update(connection, "UPDATE reservations SET status = 'CANCELLED' WHERE reservation_key = ?",
                        reservationKey);
            } else if (status == null) { // released before it was reserved: a tombstone
                update(connection, "INSERT INTO reservations VALUES (?, ?, NULL, 0, 'CANCELLED')", reservationKey,
                        command.orderId());
            }
            outbox.append(connection, message.header(SagaMessages.REPLY_TOPIC).orElseThrow(), message.key(),
                    new InventoryReleased(command.orderId(), true), SagaMessages.replyHeaders(message));
        }

        long available() {
            return tx.inTransaction(c -> number(c, "SELECT available FROM stock WHERE sku = ?", "book"));
        }

        String reservation(String orderId) {
            return tx.inTransaction(c -> text(c, "SELECT status FROM reservations WHERE order_id = ?", orderId));
        }

        /** The replies to a saga's commands in the outbox: a command's key, and so its reply's, is its saga's id. */
        long replies(String sagaId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM ss_outbox WHERE message_key = ?", sagaId));
        }

        /** Those of them the relay has published. */
        long repliesSent(String sagaId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM ss_outbox WHERE message_key = ?"
                    + " AND status = 'SENT'", sagaId));
        }
    }

    /** The Payment service: charges keyed by the pivot's idempotency key, declines over the card limit. */
    static final class PaymentService {
        final JdbcTransactions tx;

        PaymentService(DataSource db, EventBus bus) {
            tx = new JdbcTransactions(db);
            tx.run(c -> c.createStatement().execute("CREATE TABLE charges (charge_key VARCHAR(300) PRIMARY KEY,"
                    + " order_id VARCHAR(100) NOT NULL, amount_cents BIGINT NOT NULL)"));
            JdbcInbox inbox = JdbcInbox.create(db, java.time.Clock.systemUTC());
            JdbcOutbox outbox = JdbcOutbox.builder(db).eventBus(bus).build();
            bus.subscribe("payment-service", PAYMENT_COMMANDS, ProcessPayment.class,
                    inbox.handler((command, ctx, c) -> {
                Message message = ctx.message();
                PaymentProcessed reply;
                if (command.amountCents() > CARD_LIMIT_CENTS) {
                    reply = new PaymentProcessed(command.orderId(), null, false, "card limit exceeded");
                } else {
                    update(c, "INSERT INTO charges VALUES (?, ?, " + command.amountCents() + ") ON CONFLICT DO NOTHING",
                            message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow(), command.orderId());
                    reply = new PaymentProcessed(command.orderId(), "pay-" + command.orderId(), true, null);
                }
                outbox.append(c, message.header(SagaMessages.REPLY_TOPIC).orElseThrow(), message.key(), reply,
                        SagaMessages.replyHeaders(message));
            }));
        }

        long charges(String orderId) {
            return tx.inTransaction(c -> number(c, "SELECT COUNT(*) FROM charges WHERE order_id = ?", orderId));
        }
    }

    static final TypeRegistry TYPES = TypeRegistry.builder()
            .register(ReserveInventory.class).register(ReserveInventoryV2.class).register(InventoryReserved.class)
            .register(ReleaseInventory.class).register(InventoryReleased.class)
            .register(ProcessPayment.class).register(PaymentProcessed.class)
            .build();
    /** The Inventory service still runs the release that knows only version 1 of its command. */
    static final TypeRegistry INVENTORY_TYPES = TypeRegistry.builder()
            .register(ReserveInventory.class).register(InventoryReserved.class)
            .register(ReleaseInventory.class).register(InventoryReleased.class)
            .build();

    /**
     * The OrderSaga. {@code express} orders are sent as version 2 of the reservation command, which the Inventory
     * service cannot read yet.
     */
    static SagaDefinition<OrderData> orderSaga(String name, Orders orders, boolean express) {
        return orderSaga(name, orders, express, REPLY_TIMEOUT);
    }

    /** The OrderSaga whose remote steps wait {@code replyTimeout} for each reply. */
    static SagaDefinition<OrderData> orderSaga(String name, Orders orders, boolean express, Duration replyTimeout) {
        SagaDefinition.StepBuilder<OrderData> reserve = SagaDefinition.builder(name, OrderData.class)
                .dataType(name + "-data")
                .step("create-order")
                    .action((order, ctx) -> {
                        orders.create(ctx.idempotencyKey(), order.orderId());
                        return order;
                    })
                    .compensation((order, ctx) -> orders.cancel(ctx.idempotencyKey()))
                .step("reserve-inventory");
        reserve = express
                ? reserve.command(INVENTORY_COMMANDS, ReserveInventoryV2.class,
                        (order, ctx) -> new ReserveInventoryV2(order.orderId(), order.sku(), order.quantity(), "north"))
                : reserve.command(INVENTORY_COMMANDS, ReserveInventory.class,
                        (order, ctx) -> new ReserveInventory(order.orderId(), order.sku(), order.quantity()));
        return reserve
                    .onReply(InventoryReserved.class, (order, reply) -> order.withReservationId(reply.reservationId()))
                    .compensationCommand(INVENTORY_RELEASES, ReleaseInventory.class,
                            (order, ctx) -> new ReleaseInventory(order.orderId()))
                    .onCompensationReply(InventoryReleased.class, (order, reply) -> {
                        if (!reply.released()) {
                            throw new IllegalStateException("the warehouse refused to release " + reply.orderId());
                        }
                    })
                    .timeout(replyTimeout)
                    .compensationRetry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMillis(100))
                            .build())
                .pivot("process-payment")
                    .command(PAYMENT_COMMANDS, ProcessPayment.class,
                            (order, ctx) -> new ProcessPayment(order.orderId(), order.amountCents()))
                    .onReply(PaymentProcessed.class, (order, reply) -> {
                        if (!reply.approved()) {
                            throw new PaymentDeclined(reply.reason());
                        }
                        return order.withPaymentId(reply.paymentId());
                    })
                    .timeout(replyTimeout)
                .retriable("schedule-shipping")
                    .action((order, ctx) -> {
                        orders.scheduleShipping(ctx.idempotencyKey(), order.orderId());
                        return order.withShippingScheduled();
                    })
                .build();
    }

    private static KafkaServices services;
    private static Orders orders;
    private static InventoryService inventory;
    private static PaymentService payment;
    private static EventBus orderBus;
    private static SagaDefinition<OrderData> orderSaga;
    private static SagaDefinition<OrderData> expressSaga;
    private static SagaOrchestrator orchestrator;
    private static final KafkaServices.Signals signals = new KafkaServices.Signals(WAIT);
    private static final List<Message> deadLetters = new CopyOnWriteArrayList<>();

    static EventBus bus(String service, TypeRegistry types) {
        return services.closeAtEnd(EventBus.builder(services.transport(service)).types(types).build());
    }

    static OutboxRelay relay(DataSource db, EventBus bus, String name) {
        OutboxRelay relay = OutboxRelay.builder(db).eventBus(bus).name(name).pollInterval(Duration.ofMillis(20))
                .build();
        relay.start();
        return services.closeAtEnd(relay);
    }

    @BeforeAll
    static void startTheServices() throws Exception {
        services = KafkaServices.start();
        DataSource orderDb = ORDER_DB.database().dataSource();
        DataSource inventoryDb = INVENTORY_DB.database().dataSource();
        DataSource paymentDb = PAYMENT_DB.database().dataSource();
        for (DataSource db : List.of(orderDb, inventoryDb, paymentDb)) {
            JdbcSchema.of(db).migrate();
        }

        EventBus inventoryBus = bus("inventory-service", INVENTORY_TYPES);
        relay(inventoryDb, inventoryBus, "inventory");
        inventory = new InventoryService(inventoryDb, inventoryBus);
        EventBus paymentBus = bus("payment-service", TYPES);
        relay(paymentDb, paymentBus, "payment");
        payment = new PaymentService(paymentDb, paymentBus);

        orders = new Orders(orderDb);
        orderBus = bus("order-service", TYPES);
        relay(orderDb, orderBus, "orders");
        orderSaga = orderSaga("order-saga", orders, false);
        expressSaga = orderSaga("express-order-saga", orders, true);
        orchestrator = services.closeAtEnd(SagaOrchestrator.builder()
                .store(JdbcSagaStore.builder(orderDb).transactionalMessages().build())
                .bus(orderBus)
                .replyTopic(REPLIES).group("order-saga")
                .register(orderSaga).register(expressSaga)
                .ownership("orders-main", Duration.ofSeconds(1), Duration.ofSeconds(5))
                .build());
        orchestrator.recover();

        EventBus operations = bus("operations", TYPES);
        for (String topic : List.of(INVENTORY_COMMANDS + ".DLT", REPLIES + ".DLT")) {
            operations.subscribe("dead-letter-watch", topic, Message.class, (dead, ctx) -> {
                deadLetters.add(dead);
                signals.fire(topic + ":" + dead.key(), dead);
            });
        }
        // One declined order first, so that every topic exists and every group holds its partitions before the tests
        // time their steps (a topic auto-created by its first record takes a metadata refresh to be read).
        run(orderSaga, newOrder("warm-up", 90_000));
    }

    @AfterAll
    static void stopTheServices() throws Exception {
        services.close();
    }

    static OrderData newOrder(String prefix, long amountCents) {
        return new OrderData(prefix + "-" + UUID.randomUUID().toString().substring(0, 8), "book", 2, amountCents,
                null, null, false);
    }

    static SagaResult<OrderData> run(SagaDefinition<OrderData> saga, OrderData order) throws Exception {
        return orchestrator.start(saga, "order-" + order.orderId(), order.orderId(), order).toCompletableFuture()
                .get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Test
    void anOrderInStockWithinTheCardLimitIsReservedChargedAndShippedOnce() throws Exception {
        long before = inventory.available();
        OrderData order = newOrder("happy", 4_000);

        SagaResult<OrderData> result = run(orderSaga, order);

        assertEquals(SagaOutcome.COMPLETED, result.outcome(), String.valueOf(result.failure()));
        assertEquals("res-" + order.orderId(), result.data().reservationId());
        assertEquals("pay-" + order.orderId(), result.data().paymentId());
        assertTrue(result.data().shippingScheduled());
        assertEquals(before - 2, inventory.available());
        assertEquals("RESERVED", inventory.reservation(order.orderId()));
        assertEquals(1, payment.charges(order.orderId()));
        assertEquals(1, orders.shipments(order.orderId()));
        assertEquals("CREATED", orders.status(order.orderId()));
    }

    @Test
    void aDeclinedPaymentReleasesTheReservedStockThenCancelsTheOrder() throws Exception {
        long before = inventory.available();
        OrderData order = newOrder("declined", 90_000);

        SagaResult<OrderData> result = run(orderSaga, order);

        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals("process-payment", result.failure().step());
        assertEquals(PaymentDeclined.class.getName(), result.failure().errorClass());
        assertEquals("card limit exceeded", result.failure().message());
        assertEquals(before, inventory.available(), "the release gave the stock back");
        assertEquals("CANCELLED", inventory.reservation(order.orderId()));
        assertEquals("CANCELLED", orders.status(order.orderId()));
        assertEquals(0, payment.charges(order.orderId()));
        assertEquals(0, orders.shipments(order.orderId()));
    }

    @Test
    void aReservationAnsweredAfterTheStepTimedOutIsIgnoredAndTheUncertainStepIsReleased() throws Exception {
        long before = inventory.available();
        OrderData order = newOrder("late", 4_000);
        inventory.held.add(order.orderId());

        SagaResult<OrderData> result = run(orderSaga, order);

        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals("reserve-inventory", result.failure().step());
        assertEquals(SagaTimeoutException.class.getName(), result.failure().errorClass());
        assertEquals("CANCELLED", inventory.reservation(order.orderId()), "the release left a tombstone");

        inventory.answerHeld(order.orderId()); // the warehouse answers, seconds late
        // Published first: the reply is in the outbox as soon as answerHeld returns, on the topic only once the relay
        // sent it, and the group has read the topic to its end before that too.
        await().atMost(WAIT).until(() -> inventory.repliesSent(result.sagaId()) == 2);
        await().atMost(WAIT).until(() -> consumed(orderBus, "order-saga", REPLIES));

        SagaInstance saga = orchestrator.find(result.sagaId()).orElseThrow();
        assertEquals(SagaStatus.COMPENSATED, saga.status());
        assertEquals(before, inventory.available(), "the late reservation took nothing past its tombstone");
        assertEquals("CANCELLED", orders.status(order.orderId()));
        assertEquals(0, payment.charges(order.orderId()));
        assertTrue(deadLetters.stream().noneMatch(dead -> dead.key().equals(result.sagaId())),
                "a late reply is ignored, not dead-lettered: " + deadLetters);
    }

    @Test
    void aReservationCommandDeliveredAgainByTheBrokerIsSkippedByTheInboxAndAnsweredOnce() throws Exception {
        OrderData order = newOrder("redelivered", 3_000);
        SagaResult<OrderData> result = run(orderSaga, order);
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        long available = inventory.available();
        Message command = inventory.firstCommands.get(order.orderId());

        // the same record again (same id), as after the participant's commit of its offset was lost
        inventory.bus.publish(command).toCompletableFuture().join();
        await().atMost(WAIT).until(() -> consumed(inventory.bus, INVENTORY_GROUP, INVENTORY_COMMANDS));

        assertEquals(1, inventory.handled.get(command.id()).get(), "the inbox skipped the redelivery");
        assertEquals(available, inventory.available());
        assertEquals(1, inventory.replies(result.sagaId()), "no second reply");
        assertEquals(SagaStatus.COMPLETED, orchestrator.find(result.sagaId()).orElseThrow().status());
    }

    @Test
    void aCommandTheInventoryCannotDecodeIsDeadLetteredThereAndTheSagaFailsItsStepByTimeoutAndCompensates()
            throws Exception {
        long before = inventory.available();
        OrderData order = newOrder("express", 4_000);

        SagaResult<OrderData> result = run(expressSaga, order);

        Message dead = (Message) signals.await(INVENTORY_COMMANDS + ".DLT:" + result.sagaId());
        assertEquals("undecodable", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals(INVENTORY_GROUP, dead.header(MessageHeaders.DLT_ORIGINAL_GROUP).orElseThrow());
        assertEquals("reserve-inventory", dead.type());
        assertEquals(2, dead.version());
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals("reserve-inventory", result.failure().step());
        assertEquals(SagaTimeoutException.class.getName(), result.failure().errorClass());
        assertEquals("CANCELLED", orders.status(order.orderId()));
        assertEquals(before, inventory.available());
        assertEquals("CANCELLED", inventory.reservation(order.orderId()), "the uncertain step's release: a tombstone");
    }

    @Test
    void aReleaseTheWarehouseKeepsRefusingNeedsAttentionAndTheOperatorsRetryAfterTheFixCompensates()
            throws Exception {
        long before = inventory.available();
        OrderData order = newOrder("stuck", 90_000);
        inventory.refusingReleases.add(order.orderId());

        SagaResult<OrderData> result = run(orderSaga, order);

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals("process-payment", result.failure().step());
        assertEquals("reserve-inventory", result.compensationFailure().step());
        assertEquals("the warehouse refused to release " + order.orderId(), result.compensationFailure().message());
        assertEquals(List.of(result.sagaId()), orchestrator.findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).stream()
                .map(SagaInstance::sagaId).filter(result.sagaId()::equals).toList());
        assertEquals(before - 2, inventory.available(), "nothing released yet");

        inventory.refusingReleases.remove(order.orderId()); // the warehouse system is fixed
        SagaResult<Object> retried = orchestrator.retryCompensation(result.sagaId()).toCompletableFuture()
                .get(WAIT.toMillis(), TimeUnit.MILLISECONDS);

        assertEquals(SagaOutcome.COMPENSATED, retried.outcome());
        assertEquals(before, inventory.available());
        assertEquals("CANCELLED", orders.status(order.orderId()));
        assertNull(retried.compensationFailure());
    }

    @Test
    void anOrchestratorThatDiesMidSagaHasItFinishedOnceByTheOtherInstanceRecovery() throws Exception {
        DataSource orderDb = ORDER_DB.database().dataSource();
        String replies = "order-saga-replies-crash-" + RUN;
        EventBus busA = bus("order-service-a", TYPES);
        EventBus busB = bus("order-service-b", TYPES);
        OutboxRelay relayA = relay(orderDb, busA, "orders-a");
        OutboxRelay relayB = relay(orderDb, busB, "orders-b");
        // The replies reach B only once its group has rebalanced after A's consumer left, which it learns at its next
        // Kafka heartbeat (3 s apart by default): a reply wait longer than that, lest the step time out first.
        SagaDefinition<OrderData> patientSaga = orderSaga("order-saga", orders, false, WAIT);
        // Node A dies before its 4th write (started, create-order started and succeeded, then the reservation's
        // WAITING state with its command), so the order is created and no command was sent: a recovery must go on.
        CrashingSagaStore dying = new CrashingSagaStore(JdbcSagaStore.builder(orderDb).transactionalMessages().build(),
                4, true);
        SagaOrchestrator nodeA = services.closeAtEnd(SagaOrchestrator.builder().store(dying).bus(busA)
                .replyTopic(replies).group("order-saga-crash").register(patientSaga)
                .ownership("orders-a", Duration.ofMillis(200), Duration.ofSeconds(1)).build());
        SagaOrchestrator nodeB = SagaOrchestrator.builder()
                .store(JdbcSagaStore.builder(orderDb).transactionalMessages().build()).bus(busB)
                .replyTopic(replies).group("order-saga-crash").register(patientSaga)
                .ownership("orders-b", Duration.ofMillis(200), Duration.ofSeconds(1))
                .recoverEvery(Duration.ofMillis(300), Duration.ZERO).build();
        try {
            OrderData order = newOrder("crash", 4_000);
            String sagaId = "order-" + order.orderId();
            long before = inventory.available();

            // the crash is an Error: it propagates from start on the thread that drove the saga to the dying write
            assertThrows(SimulatedCrash.class, () -> nodeA.start(patientSaga, sagaId, order.orderId(), order));
            assertTrue(dying.crashed());
            // a dead process's consumers leave the group and its relay stops
            relayA.close();
            busA.close();

            await().atMost(WAIT).until(() -> nodeB.find(sagaId).map(s -> s.status() == SagaStatus.COMPLETED)
                    .orElse(false));

            List<TransitionType> history = nodeB.history(sagaId).stream().map(t -> t.type()).toList();
            SagaInstance saga = nodeB.find(sagaId).orElseThrow();
            assertEquals("orders-b", saga.owner());
            assertEquals(1, history.stream().filter(TransitionType.SAGA_ADOPTED::equals).count(), history.toString());
            assertEquals(1, history.stream().filter(TransitionType.SAGA_COMPLETED::equals).count(), history.toString());
            assertEquals(before - 2, inventory.available(), "reserved once");
            assertEquals(1, inventory.handled.keySet().stream().filter(id -> id.startsWith(sagaId + "/")).count(),
                    "one reservation command was sent: " + inventory.handled.keySet());
            assertEquals(1, payment.charges(order.orderId()));
            assertEquals(1, orders.shipments(order.orderId()));
            assertEquals("CREATED", orders.status(order.orderId()));
        } finally {
            nodeB.close();
            relayB.close();
            busB.close();
        }
    }

    static String text(Connection connection, String sql, String value) throws Exception {
        try (PreparedStatement ps = connection.prepareStatement(sql)) {
            ps.setString(1, value);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }
}
