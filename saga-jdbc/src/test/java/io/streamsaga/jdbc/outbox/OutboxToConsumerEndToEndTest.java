package io.streamsaga.jdbc.outbox;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.idempotency.IdempotentProducer;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.idempotency.JdbcDeduplicationStore;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The outbox to its consumers end to end on the in-memory bus: rows committed before any relay ran, a relay re-send,
 * a poison message dead-lettered without its effect while the others are applied once with their own outgoing
 * events, and the idempotent consumer and producer over JdbcDeduplicationStore across a restart; subclasses pick
 * PostgreSQL or H2.
 */
abstract class OutboxToConsumerEndToEndTest {
    record OrderCreated(String orderId, long amount) {
    }

    record InvoiceIssued(String orderId) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private TestDatabase database;
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private EventBus bus;
    private JdbcOutbox outbox;
    private JdbcTransactions tx;

    @BeforeEach
    void setUp() {
        database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        database.execute("CREATE TABLE orders (id VARCHAR(50) PRIMARY KEY, amount BIGINT NOT NULL)");
        database.execute("CREATE TABLE invoices (order_id VARCHAR(50) PRIMARY KEY)");
        bus = EventBus.builder(transport).scheduler(scheduler)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                        .register("invoice-issued", 1, InvoiceIssued.class).build())
                .build();
        outbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).clock(scheduler.clock()).build();
        tx = new JdbcTransactions(database.dataSource());
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    private void createOrder(String id, long amount) {
        tx.run(c -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (id, amount) VALUES (?, ?)")) {
                ps.setString(1, id);
                ps.setLong(2, amount);
                ps.executeUpdate();
            }
            outbox.append(c, "order-created", id, new OrderCreated(id, amount));
        });
    }

    private OutboxRelay relay() {
        return OutboxRelay.builder(database.dataSource()).eventBus(bus).executor(Runnable::run).build();
    }

    /** Drains the bus and runs the retries' backoff on the virtual clock until nothing is left. */
    private void settle() {
        for (int i = 0; i < 20; i++) {
            transport.drainAll();
            scheduler.advance(Duration.ofMinutes(1));
        }
        transport.drainAll();
    }

    @Test
    void aPoisonOrderIsDeadLetteredWithoutItsEffectAndEveryOtherOrderIsInvoicedOnceAndPublishesItsOwnEvent() {
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "order-created.DLT", Message.class, (m, ctx) -> deadLetters.add(m));
        List<Message> invoices = new CopyOnWriteArrayList<>();
        bus.subscribe("mail", "invoice-issued", Message.class, (m, ctx) -> invoices.add(m));
        bus.subscribe("billing", "order-created", OrderCreated.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(3)
                        .initialBackoff(Duration.ofSeconds(1)).jitter(0).build()),
                inbox.handler((order, ctx, c) -> {
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO invoices (order_id) VALUES (?)")) {
                        ps.setString(1, order.orderId());
                        ps.executeUpdate();
                    }
                    if (order.amount() < 0) {
                        throw new IllegalArgumentException("negative amount " + order.amount());
                    }
                    outbox.append(c, "invoice-issued", order.orderId(), new InvoiceIssued(order.orderId()));
                }));

        createOrder("o-1", 10);
        createOrder("o-2", -1);   // poison
        createOrder("o-3", 30);
        // the process dies before any relay ran: the rows wait in the outbox
        assertEquals(3, outbox.pendingCount());

        OutboxRelay relay = relay();
        assertEquals(3, relay.relayPending());
        database.execute("UPDATE ss_outbox SET status = 'PENDING' WHERE topic = 'order-created'"); // relay crashed before marking
        assertEquals(3, relay.relayPending());
        settle();
        assertEquals(2, relay.relayPending(), "the invoices written by the handlers");
        settle();

        assertEquals(2, database.queryLong("SELECT COUNT(*) FROM invoices"));
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM invoices WHERE order_id = 'o-2'"));
        // The relay sent o-2 twice: each delivery is dead-lettered, both with one message id for an operator to dedupe.
        assertEquals(2, deadLetters.size(), deadLetters.toString());
        assertEquals(List.of("o-2"), deadLetters.stream().map(Message::key).distinct().toList());
        assertEquals(1, deadLetters.stream().map(Message::id).distinct().count());
        assertTrue(deadLetters.get(0).header("dlt-error-message").orElse("").contains("negative amount"),
                deadLetters.get(0).headers().toString());
        assertEquals(List.of("o-1", "o-3"), invoices.stream().map(Message::key).sorted().toList());
        assertEquals(2, inbox.size());
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void aDurableIdempotentConsumerAndProducerSkipWhatAnEarlierProcessAlreadyDidThroughTheSameTable() {
        List<String> charged = new CopyOnWriteArrayList<>();
        var subscription = bus.subscribe("payments", "order-created", OrderCreated.class,
                IdempotentConsumer.builder(bus, deduplication()).build().wrap((order, ctx) -> charged.add(order.orderId())));
        createOrder("o-1", 10);
        OutboxRelay relay = relay();
        relay.relayPending();
        settle();
        subscription.close();

        // a restarted process: a new store over the same table, the same group; the relay sends o-1 again
        bus.subscribe("payments", "order-created", OrderCreated.class,
                IdempotentConsumer.builder(bus, deduplication()).build().wrap((order, ctx) -> charged.add("again " + order.orderId())));
        database.execute("UPDATE ss_outbox SET status = 'PENDING'");
        relay.relayPending();
        settle();
        assertEquals(List.of("o-1"), charged);

        List<Message> refunds = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "refund-requested", Message.class, (m, ctx) -> refunds.add(m));
        IdempotentProducer first = IdempotentProducer.builder(bus, deduplication()).build();
        assertFalse(first.send("refund-requested", "o-1", new InvoiceIssued("o-1"), "refund/o-1")
                .toCompletableFuture().join().skipped());
        IdempotentProducer afterRestart = IdempotentProducer.builder(bus, deduplication()).build();
        assertTrue(afterRestart.send("refund-requested", "o-1", new InvoiceIssued("o-1"), "refund/o-1")
                .toCompletableFuture().join().skipped());
        settle();
        assertEquals(1, refunds.size());
    }

    @Test
    void aDurableIdempotentConsumerHandlesOnceAMessageWhoseKeyIsLongerThanTheStoresColumn() {
        // The outbox takes message ids of up to 500 characters, so the consumer's default key (group + "/" + id) can
        // exceed the 500 of ss_dedup.dedup_key: the store refused it with a ConfigurationException, and a message
        // the in-memory store deduplicates was dead-lettered unhandled. Such a key is stored under a digest instead.
        List<String> charged = new CopyOnWriteArrayList<>();
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "order-created.DLT", Message.class, (m, ctx) -> deadLetters.add(m));
        bus.subscribe("payments", "order-created", OrderCreated.class,
                IdempotentConsumer.builder(bus, deduplication()).build().wrap((order, ctx) -> charged.add(order.orderId())));
        String longId = "order-created/" + "o".repeat(486);
        tx.run(c -> outbox.append(c, Message.builder("order-created").id(longId).key("o-1").type("order-created")
                .payload(new OrderCreated("o-1", 10)).build()));
        OutboxRelay relay = relay();
        relay.relayPending();
        settle();
        database.execute("UPDATE ss_outbox SET status = 'PENDING'"); // the relay sends it again
        relay.relayPending();
        settle();

        assertEquals(List.of(), deadLetters);
        assertEquals(List.of("o-1"), charged);
    }

    private JdbcDeduplicationStore deduplication() {
        return JdbcDeduplicationStore.builder(database.dataSource()).name("payments").window(Duration.ofDays(30)).build();
    }
}
