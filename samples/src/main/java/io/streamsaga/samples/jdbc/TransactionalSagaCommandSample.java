package io.streamsaga.samples.jdbc;

import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.StepState;

import java.io.PrintStream;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A remote saga step whose command is written to the transactional outbox in the same transaction as the
 * saga's {@code WAITING} transition ({@code JdbcSagaStore.builder(ds).transactionalMessages()}). The process
 * dies right after that write, before anything is published; the outbox relay sends the command anyway,
 * then dies before marking it sent and sends it again; the payment service charges once through its inbox;
 * a fresh orchestrator recovers and completes the saga with the reply.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.jdbc.TransactionalSagaCommandSample</pre>
 * Option: {@code --file PATH} (keep the H2 database in a file).
 */
public final class TransactionalSagaCommandSample {
    /** The saga data. */
    public record OrderData(String orderId, long amountCents, String paymentId) {
    }

    /** The command to the payment service. */
    public record ChargeCard(String orderId, long amountCents) {
    }

    /** The payment service's reply. */
    public record CardCharged(String paymentId) {
    }

    /** What happened. */
    public record Result(boolean crashed, int commandDeliveries, long charges, SagaOutcome outcome, String paymentId) {
    }

    private TransactionalSagaCommandSample() {
    }

    public static void main(String[] args) {
        run(SampleDatabase.option(args, "--file"), System.out);
    }

    public static Result run(String file, PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (HikariDataSource dataSource = SampleDatabase.open(file);
             EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                     .register("charge-card", 1, ChargeCard.class).register("card-charged", 1, CardCharged.class).build())
                     .build()) {
            JdbcTransactions tx = new JdbcTransactions(dataSource);
            tx.run(c -> c.createStatement().execute(
                    "CREATE TABLE IF NOT EXISTS charges (order_id VARCHAR(50) PRIMARY KEY, amount_cents BIGINT NOT NULL)"));

            // The payment service: its charge and the inbox row commit together, so a re-sent command is skipped.
            AtomicInteger deliveries = new AtomicInteger();
            JdbcInbox inbox = JdbcInbox.create(dataSource, Clock.systemUTC());
            var charge = inbox.<ChargeCard>handler((command, ctx, connection) -> {
                try (PreparedStatement ps = connection.prepareStatement(
                        "INSERT INTO charges (order_id, amount_cents) VALUES (?, ?)")) {
                    ps.setString(1, command.orderId());
                    ps.setLong(2, command.amountCents());
                    ps.executeUpdate();
                }
                out.printf("   payment service: charged %s %d cents (command %s)%n", command.orderId(), command.amountCents(),
                        ctx.message().id());
                SagaMessages.reply(bus, ctx.message(), new CardCharged("pay-" + command.orderId()));
            });
            bus.subscribe("payment-service", "payment-commands", ChargeCard.class, (command, ctx) -> {
                out.printf("   bus: command %s delivered (delivery %d)%n", ctx.message().id(), deliveries.incrementAndGet());
                charge.handle(command, ctx);
            });

            SagaDefinition<OrderData> saga = SagaDefinition.builder("paid-order", OrderData.class).dataType("paid-order-data")
                    .step("create-order").action((d, ctx) -> d)
                    .step("charge-card").command("payment-commands", (d, ctx) -> new ChargeCard(d.orderId(), d.amountCents()))
                    .onReply(CardCharged.class, (d, reply) -> new OrderData(d.orderId(), d.amountCents(), reply.paymentId()))
                    .build();
            JdbcSagaStore store = JdbcSagaStore.builder(dataSource).transactionalMessages().build();
            String orderId = "o-" + System.nanoTime() % 100_000;
            String sagaId = "saga-" + orderId;

            out.printf("1. starting the saga for %s; the process dies right after storing 'charge-card WAITING'"
                    + " (write 4), which holds the command in the same transaction%n", orderId);
            boolean crashed = false;
            try (SagaOrchestrator first = SagaOrchestrator.builder().store(new CrashingSagaStore(store, 4)).bus(bus)
                    .scheduler(scheduler).register(saga).build()) {
                first.start(saga, sagaId, orderId, new OrderData(orderId, 4_200, null));
            } catch (SimulatedCrash crash) {
                crashed = true;
                out.printf("   CRASH (%s); steps in the database: %s; nothing was published%n", crash.getMessage(),
                        store.find(sagaId).orElseThrow().steps().stream().map(StepState::status).toList());
            }
            transport.drainAll();

            out.println("2. the outbox relay publishes the command the dead process never sent");
            relay(dataSource, bus, transport);
            out.println("3. the relay dies before marking the row sent: on restart it sends the command again");
            tx.run(c -> {
                // the saga's command: its key is the saga id (its id, <saga id>/<created at>/charge-card/1, holds a time)
                try (PreparedStatement ps = c.prepareStatement("UPDATE ss_outbox SET status = 'PENDING'"
                        + " WHERE topic = 'payment-commands' AND message_key = ?")) {
                    ps.setString(1, sagaId);
                    if (ps.executeUpdate() != 1) { // the row not found: the sample would show no re-send at all
                        throw new IllegalStateException("the saga's command row was not found in the outbox");
                    }
                }
            });
            relay(dataSource, bus, transport);

            out.println("4. a fresh orchestrator recovers the saga (it does not re-send: the outbox had the command)");
            SagaResult<OrderData> result;
            try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                    .register(saga).build()) {
                second.recover();
                transport.drainAll(); // the payment service's reply
                result = second.result(sagaId, OrderData.class).toCompletableFuture().join();
            }
            long charges = tx.inTransaction(c -> {
                try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM charges WHERE order_id = ?")) {
                    ps.setString(1, orderId);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        return rs.getLong(1);
                    }
                }
            });
            String paymentId = result.data().paymentId();
            out.printf("5. outcome %s, payment %s; command delivered %d times, card charged %d time(s)%n", result.outcome(),
                    paymentId, deliveries.get(), charges);
            return new Result(crashed, deliveries.get(), charges, result.outcome(), paymentId);
        } finally {
            transport.close();
        }
    }

    private static void relay(HikariDataSource dataSource, EventBus bus, InMemoryTransport transport) {
        OutboxRelay.builder(dataSource).eventBus(bus).executor(Runnable::run).build().relayPending();
        transport.drainAll();
    }
}
