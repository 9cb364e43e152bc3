package io.streamsaga.samples.jdbc;

import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;

import java.io.PrintStream;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The source's {@code createOrder} made crash-safe: the order row and its {@code order-created} event
 * are written in one database transaction (transactional outbox), a relay publishes the event to the bus
 * through a broker outage and after its own crash, and the payment service applies it exactly once
 * through the inbox although it arrives twice.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.jdbc.TransactionalOutboxSample</pre>
 * Add {@code -Dexec.args="--file target/outbox-sample"} to keep the H2 database in a file.
 */
public final class TransactionalOutboxSample {
    /** The event. */
    public record OrderCreated(String orderId, long amountCents) {
    }

    /** What happened. */
    public record Result(List<String> orders, int relayAttempts, int deliveries, List<String> charged, long pending) {
    }

    /** Stands for the relay's process dying after the broker took a message, before it was marked sent. */
    static final class RelayCrash extends Error {
        private static final long serialVersionUID = 1L;
    }

    private TransactionalOutboxSample() {
    }

    public static void main(String[] args) {
        run(SampleDatabase.option(args, "--file"), System.out);
    }

    public static Result run(String file, PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (HikariDataSource dataSource = SampleDatabase.open(file);
             EventBus bus = EventBus.builder(transport)
                     .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                     .scheduler(scheduler).build()) {
            JdbcTransactions tx = new JdbcTransactions(dataSource);
            tx.run(c -> c.createStatement().execute("CREATE TABLE IF NOT EXISTS orders (id VARCHAR(50) PRIMARY KEY,"
                    + " amount_cents BIGINT NOT NULL)"));
            tx.run(c -> c.createStatement().execute("CREATE TABLE IF NOT EXISTS payments (order_id VARCHAR(50) NOT NULL,"
                    + " amount_cents BIGINT NOT NULL)"));
            JdbcOutbox outbox = JdbcOutbox.builder(dataSource).codec(bus.codec()).clock(scheduler.clock()).build();
            JdbcInbox inbox = JdbcInbox.create(dataSource, scheduler.clock());

            AtomicInteger deliveries = new AtomicInteger();
            List<String> charged = new ArrayList<>();
            bus.subscribe("payment", "order-created", OrderCreated.class, inbox.handler((order, ctx, c) -> {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO payments (order_id, amount_cents) VALUES (?, ?)")) {
                    ps.setString(1, order.orderId());
                    ps.setLong(2, order.amountCents());
                    ps.executeUpdate();
                }
                charged.add(order.orderId());
                out.printf("payment: charged %d cents for %s%n", order.amountCents(), order.orderId());
            }));
            bus.subscribe("audit", "order-created", Message.class, (m, ctx) -> deliveries.incrementAndGet());

            out.println("1. createOrder: the order row and its event in one transaction");
            createOrder(tx, outbox, "o-1", 12_000, out);
            createOrder(tx, outbox, "o-2", -5, out);
            createOrder(tx, outbox, "o-3", 4_500, out);
            out.printf("   outbox: %d events pending%n", outbox.pendingCount());

            out.println("2. the broker is down for the first two attempts: the relay backs off and retries");
            AtomicInteger attempts = new AtomicInteger();
            AtomicInteger crashAt = new AtomicInteger(-1);
            OutboxRelay.MessagePublisher broker = m -> {
                int attempt = attempts.incrementAndGet();
                if (attempt <= 2) {
                    out.printf("   relay attempt %d: broker unreachable%n", attempt);
                    return CompletableFuture.failedFuture(new PublishException(m.topic(), "broker unreachable", null, true));
                }
                out.printf("   relay attempt %d: published %s%n", attempt, m.key());
                CompletableFuture<?> sent = bus.publish(m).toCompletableFuture();
                if (attempt == crashAt.get()) {
                    out.println("   ...and the relay's process dies before marking it sent");
                    throw new RelayCrash();
                }
                return sent;
            };
            RetryPolicy backoff = RetryPolicy.builder().initialBackoff(Duration.ofSeconds(1)).multiplier(2)
                    .maxBackoff(Duration.ofSeconds(30)).jitter(0).build();
            try (OutboxRelay relay = OutboxRelay.builder(dataSource).publisher(broker).scheduler(scheduler)
                    .executor(Runnable::run).backoff(backoff).build()) {
                crashAt.set(3);
                try {
                    relay.start();                         // attempt 1 fails
                    scheduler.advance(Duration.ofSeconds(1));  // attempt 2 fails
                    scheduler.advance(Duration.ofSeconds(2));  // attempt 3 publishes o-1, then the crash
                } catch (RelayCrash crash) {
                    out.printf("   after the crash: %d events still pending (none was marked sent)%n", outbox.pendingCount());
                }
            }
            transport.drainAll();

            out.println("3. a new relay starts: it publishes every pending event again (at least once)");
            try (OutboxRelay restarted = OutboxRelay.builder(dataSource).publisher(broker).scheduler(scheduler)
                    .executor(Runnable::run).backoff(backoff).build()) {
                restarted.relayPending();
            }
            transport.drainAll();

            List<String> orders = new ArrayList<>();
            tx.run(c -> {
                try (ResultSet rs = c.createStatement().executeQuery("SELECT id FROM orders ORDER BY id")) {
                    while (rs.next()) {
                        orders.add(rs.getString(1));
                    }
                }
            });
            out.printf("4. orders %s; %d deliveries on the bus; payments applied once each through the inbox: %s;"
                    + " %d events pending%n", orders, deliveries.get(), charged, outbox.pendingCount());
            return new Result(orders, attempts.get(), deliveries.get(), charged, outbox.pendingCount());
        }
    }

    /** The source's createOrder, with the event written to the outbox in the order's transaction. */
    private static void createOrder(JdbcTransactions tx, JdbcOutbox outbox, String id, long amountCents, PrintStream out) {
        try {
            tx.run(c -> {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (id, amount_cents) VALUES (?, ?)")) {
                    ps.setString(1, id);
                    ps.setLong(2, amountCents);
                    ps.executeUpdate();
                }
                outbox.append(c, "order-created", id, new OrderCreated(id, amountCents));
                validate(amountCents);
            });
            out.printf("   order %s saved with its order-created event%n", id);
        } catch (IllegalArgumentException e) {
            out.printf("   order %s rejected (%s): neither the order nor its event was kept%n", id, e.getMessage());
        }
    }

    private static void validate(long amountCents) {
        if (amountCents <= 0) {
            throw new IllegalArgumentException("amount must be positive, but was " + amountCents);
        }
    }
}
