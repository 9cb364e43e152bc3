package io.streamsaga.samples.jdbc;

import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepContext;
import io.streamsaga.saga.StepState;

import java.io.PrintStream;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;

/**
 * The OrderSaga (create order, reserve inventory, process payment) on the JDBC saga store: the process
 * "dies" in the middle of the saga (after the store's {@code N}-th write), and a fresh orchestrator
 * started over the same database finishes it: completes it, or, with {@code --fail-payment}, compensates
 * the inventory reservation and the order in reverse order. Every step writes to the application's own
 * tables idempotently by its idempotency key, because recovery may run it a second time.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.jdbc.DurableOrderSagaSample -Dexec.args="--fail-payment --crash-after 4"</pre>
 * Options: {@code --fail-payment}, {@code --crash-after N} (default 4; 0 never crashes),
 * {@code --file PATH} (keep the H2 database in a file).
 */
public final class DurableOrderSagaSample {
    /** The saga data. */
    public record OrderData(String orderId, long amountCents, boolean cardDeclined) {
    }

    /** What happened. */
    public record Result(boolean crashed, SagaOutcome outcome, String orderStatus, boolean reserved, String payment,
                         List<String> history) {
    }

    private DurableOrderSagaSample() {
    }

    public static void main(String[] args) {
        String crashAfter = SampleDatabase.option(args, "--crash-after");
        run(List.of(args).contains("--fail-payment"), crashAfter == null ? 4 : Integer.parseInt(crashAfter),
                SampleDatabase.option(args, "--file"), System.out);
    }

    public static Result run(boolean failPayment, int crashAfter, String file, PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        try (HikariDataSource dataSource = SampleDatabase.open(file)) {
            JdbcTransactions tx = new JdbcTransactions(dataSource);
            tx.run(c -> {
                c.createStatement().execute("CREATE TABLE IF NOT EXISTS orders (id VARCHAR(50) PRIMARY KEY, status VARCHAR(20) NOT NULL)");
                c.createStatement().execute("CREATE TABLE IF NOT EXISTS reservations (order_id VARCHAR(50) PRIMARY KEY)");
                c.createStatement().execute("CREATE TABLE IF NOT EXISTS payments (order_id VARCHAR(50) PRIMARY KEY, status VARCHAR(20) NOT NULL)");
            });
            SagaDefinition<OrderData> saga = orderSaga(tx, out);
            JdbcSagaStore store = JdbcSagaStore.create(dataSource);
            String orderId = "o-" + System.nanoTime() % 100_000;
            String sagaId = "saga-" + orderId;

            out.printf("1. starting the OrderSaga for %s (%s); the process dies after the store's write %d%n",
                    orderId, failPayment ? "the card will be declined" : "the card is fine", crashAfter);
            CrashingSagaStore dying = new CrashingSagaStore(store, crashAfter);
            boolean crashed = false;
            try (SagaOrchestrator first = SagaOrchestrator.builder().store(dying).scheduler(scheduler).register(saga).build()) {
                first.start(saga, sagaId, orderId, new OrderData(orderId, 12_000, failPayment));
            } catch (SimulatedCrash crash) {
                crashed = true;
                SagaInstance stored = store.find(sagaId).orElseThrow();
                out.printf("   CRASH (%s). In the database the saga is %s, steps %s%n", crash.getMessage(),
                        stored.status(), stored.steps().stream().map(StepState::status).toList());
            }

            out.println("2. a new process starts a fresh orchestrator over the same database and recovers");
            SagaResult<Object> result;
            try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga).build()) {
                out.printf("   recovered: %s%n", second.recover().resumed());
                result = second.result(sagaId).toCompletableFuture().join();
            }
            List<String> history = store.history(sagaId).stream()
                    .map(t -> t.type() + (t.step() == null ? "" : "(" + t.step() + ")")).toList();
            String orderStatus = queryString(tx, "SELECT status FROM orders WHERE id = ?", orderId);
            boolean reserved = queryString(tx, "SELECT order_id FROM reservations WHERE order_id = ?", orderId) != null;
            String payment = queryString(tx, "SELECT status FROM payments WHERE order_id = ?", orderId);
            out.printf("3. outcome %s; order %s, inventory %s, payment %s%n", result.outcome(), orderStatus,
                    reserved ? "reserved" : "not reserved", payment == null ? "none" : payment);
            out.printf("   history: %s%n", history);
            return new Result(crashed, result.outcome(), orderStatus, reserved, payment, history);
        }
    }

    static SagaDefinition<OrderData> orderSaga(JdbcTransactions tx, PrintStream out) {
        return SagaDefinition.builder("order-saga", OrderData.class).version(1).dataType("order-saga-data")
                .step("create-order")
                .action((d, ctx) -> {
                    write(tx, ctx, out, "MERGE INTO orders o USING (VALUES (CAST(? AS VARCHAR(50)))) AS s(id) ON o.id = s.id"
                            + " WHEN NOT MATCHED THEN INSERT (id, status) VALUES (s.id, 'CREATED')", d.orderId());
                    return d;
                })
                .compensation((d, ctx) -> write(tx, ctx, out, "UPDATE orders SET status = 'CANCELLED' WHERE id = ?", d.orderId()))
                .step("reserve-inventory")
                .action((d, ctx) -> {
                    write(tx, ctx, out, "MERGE INTO reservations r USING (VALUES (CAST(? AS VARCHAR(50)))) AS s(order_id)"
                            + " ON r.order_id = s.order_id WHEN NOT MATCHED THEN INSERT (order_id) VALUES (s.order_id)", d.orderId());
                    return d;
                })
                .compensation((d, ctx) -> write(tx, ctx, out, "DELETE FROM reservations WHERE order_id = ?", d.orderId()))
                .step("process-payment")
                .action((d, ctx) -> {
                    if (d.cardDeclined()) {
                        out.printf("   %s: card declined%n", ctx.step());
                        throw new IllegalStateException("card declined");
                    }
                    write(tx, ctx, out, "MERGE INTO payments p USING (VALUES (CAST(? AS VARCHAR(50)))) AS s(order_id)"
                            + " ON p.order_id = s.order_id WHEN NOT MATCHED THEN INSERT (order_id, status) VALUES (s.order_id, 'CHARGED')",
                            d.orderId());
                    return d;
                })
                .retry(RetryPolicy.NONE)
                .compensation((d, ctx) -> write(tx, ctx, out, "UPDATE payments SET status = 'REFUNDED' WHERE order_id = ?", d.orderId()))
                .build();
    }

    /** Each statement is idempotent (MERGE / absolute updates), so running a step twice after a crash is harmless. */
    private static void write(JdbcTransactions tx, StepContext ctx, PrintStream out, String sql, String orderId) {
        tx.run(c -> {
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setString(1, orderId);
                ps.executeUpdate();
            }
        });
        out.printf("   %s %s (attempt %d, key %s)%n", ctx.step(), sql.startsWith("UPDATE") || sql.startsWith("DELETE")
                ? "compensated" : "done", ctx.attempt(), ctx.idempotencyKey());
    }

    private static String queryString(JdbcTransactions tx, String sql, String param) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setString(1, param);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? rs.getString(1) : null;
                }
            }
        });
    }
}
