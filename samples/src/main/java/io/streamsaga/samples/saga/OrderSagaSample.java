package io.streamsaga.samples.saga;

import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.StepContext;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.samples.jdbc.SampleDatabase;
import io.streamsaga.time.Scheduler;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The source's orchestrated {@code OrderSaga}: create order, reserve inventory, process payment, schedule
 * shipping; when a step fails, the completed steps are compensated in reverse order (release the
 * inventory, cancel the order), and a compensation that fails is retried and reported, never hidden.
 * Prints the run as it happens, the result and the run as a Mermaid sequence diagram.
 *
 * <p>{@code --fail-payment} makes the payment provider decline; with no option the happy path runs, then
 * the failing one. {@code --jdbc} keeps the sagas in a database (the JDBC saga store on H2 in PostgreSQL
 * mode, pooled by HikariCP) instead of in memory.
 */
public final class OrderSagaSample {

    /** The saga data: the order request and what each step produced. Immutable. */
    public record OrderData(String customer, List<String> items, long amount, String orderId, String reservationId,
                            String paymentId) {
        OrderData withOrderId(String id) {
            return new OrderData(customer, items, amount, id, reservationId, paymentId);
        }

        OrderData withReservationId(String id) {
            return new OrderData(customer, items, amount, orderId, id, paymentId);
        }

        OrderData withPaymentId(String id) {
            return new OrderData(customer, items, amount, orderId, reservationId, id);
        }
    }

    /** What a run did, for the demo and its test. */
    public record Outcome(SagaResult<OrderData> result, List<String> timeline, List<String> effects, String sequenceDiagram) {
    }

    /**
     * The application's services. Each operation is idempotent by the saga's idempotency key, because after
     * a crash the orchestrator may call it a second time.
     */
    public static final class Services {
        private final boolean declinePayments;
        private final PrintStream out;
        private final Set<String> done = new HashSet<>();
        private final List<String> effects = new ArrayList<>();

        public Services(boolean declinePayments, PrintStream out) {
            this.declinePayments = declinePayments;
            this.out = out;
        }

        private synchronized boolean once(String operation, StepContext ctx) {
            return done.add(operation + ":" + ctx.idempotencyKey());
        }

        private synchronized void effect(String text) {
            effects.add(text);
            out.println("    " + text);
        }

        public synchronized List<String> effects() {
            return List.copyOf(effects);
        }

        /** A short, stable id derived from the saga id, for readable output. */
        private static String shortId(StepContext ctx) {
            return Integer.toHexString(ctx.sagaId().hashCode());
        }

        String createOrder(OrderData order, StepContext ctx) {
            String id = "order-" + shortId(ctx);
            if (once("create", ctx)) {
                effect("[order-service]     created " + id + " for " + order.customer() + " (" + order.amount() + " cents)");
            }
            return id;
        }

        void cancelOrder(OrderData order, StepContext ctx) {
            if (once("cancel", ctx)) {
                effect("[order-service]     cancelled " + order.orderId());
            }
        }

        String reserve(OrderData order, StepContext ctx) {
            String id = "reservation-" + shortId(ctx);
            if (once("reserve", ctx)) {
                effect("[inventory-service] reserved " + order.items() + " as " + id);
            }
            return id;
        }

        void release(OrderData order, StepContext ctx) {
            if (once("release", ctx)) {
                effect("[inventory-service] released " + order.reservationId());
            }
        }

        String pay(OrderData order, StepContext ctx) {
            if (declinePayments) {
                effect("[payment-service]   declined " + order.amount() + " cents for " + order.orderId());
                throw new IllegalStateException("payment declined for " + order.orderId());
            }
            String id = "payment-" + shortId(ctx);
            if (once("pay", ctx)) {
                effect("[payment-service]   charged " + order.amount() + " cents as " + id);
            }
            return id;
        }

        void refund(OrderData order, StepContext ctx) {
            if (once("refund", ctx)) {
                effect("[payment-service]   refunded " + order.paymentId());
            }
        }

        void ship(OrderData order, StepContext ctx) {
            if (once("ship", ctx)) {
                effect("[shipping-service]  scheduled shipping of " + order.orderId());
            }
        }
    }

    private OrderSagaSample() {
    }

    /** The OrderSaga over the application's services. */
    public static SagaDefinition<OrderData> definition(Services services) {
        RetryPolicy compensationRetry = RetryPolicy.builder().maxAttempts(5).initialBackoff(Duration.ofMillis(10)).build();
        return SagaDefinition.builder("order-saga", OrderData.class)
                .version(1)
                .dataType("order-saga-data")
                .step("create-order")
                    .action((order, ctx) -> order.withOrderId(services.createOrder(order, ctx)))
                    .compensation(services::cancelOrder)
                    .compensationRetry(compensationRetry)
                .step("reserve-inventory")
                    .action((order, ctx) -> order.withReservationId(services.reserve(order, ctx)))
                    .compensation(services::release)
                    .compensationRetry(compensationRetry)
                .step("process-payment")
                    .action((order, ctx) -> order.withPaymentId(services.pay(order, ctx)))
                    .compensation(services::refund)
                    .compensationRetry(compensationRetry)
                .step("schedule-shipping")
                    .action((order, ctx) -> {
                        services.ship(order, ctx);
                        return order;
                    })
                .build();
    }

    public static void main(String[] args) {
        boolean failPayment = Arrays.asList(args).contains("--fail-payment");
        if (Arrays.asList(args).contains("--jdbc")) {
            try (HikariDataSource dataSource = SampleDatabase.open(null)) {
                System.out.println("(sagas stored in H2 through the JDBC saga store)");
                if (!failPayment) {
                    run(false, JdbcSagaStore.create(dataSource), System.out);
                    System.out.println();
                }
                run(true, JdbcSagaStore.create(dataSource), System.out);
            }
            return;
        }
        if (failPayment) {
            run(true, System.out);
        } else {
            run(false, System.out);
            System.out.println();
            run(true, System.out);
        }
    }

    /** Runs the OrderSaga once, printing to {@code out}; {@code failPayment} makes the payment fail. */
    public static Outcome run(boolean failPayment, PrintStream out) {
        return run(failPayment, new InMemorySagaStore(), out);
    }

    /** Runs the OrderSaga once over {@code store} (in memory, or durable with {@code --jdbc}). */
    public static Outcome run(boolean failPayment, SagaStore store, PrintStream out) {
        out.println("=== OrderSaga: " + (failPayment ? "the payment is declined" : "happy path") + " ===");
        List<String> timeline = new ArrayList<>();
        Services services = new Services(failPayment, out);
        SagaDefinition<OrderData> definition = definition(services);
        try (Scheduler scheduler = Scheduler.system();
             SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                     .store(store)
                     .scheduler(scheduler)
                     .register(definition)
                     .listener(new Printer(out, timeline))
                     .build()) {
            OrderData order = new OrderData("alice", List.of("book", "pen"), 12_990, null, null, null);
            SagaResult<OrderData> result = orchestrator.start(definition, "order-request-42", order)
                    .toCompletableFuture().join();
            out.println("result: " + result.outcome()
                    + (result.failure() == null ? "" : " (original failure: " + result.failure() + ")"));
            String diagram = orchestrator.sequenceDiagram(result.sagaId());
            out.println("the run as a Mermaid sequence diagram:");
            out.println(diagram);
            return new Outcome(result, List.copyOf(timeline), services.effects(), diagram);
        }
    }

    /** Prints each lifecycle event of the orchestrator as it happens. */
    private record Printer(PrintStream out, List<String> timeline) implements SagaListener {
        private void print(String line) {
            timeline.add(line);
            out.println(line);
        }

        @Override
        public void onStarted(SagaInstance instance) {
            print("saga " + instance.sagaId() + " started for " + instance.businessKey());
        }

        @Override
        public void onStepCompleted(SagaInstance instance, String step) {
            print("  step " + step + " completed");
        }

        @Override
        public void onStepFailed(SagaInstance instance, String step, SagaFailure failure) {
            print("  step " + step + " FAILED: " + failure.message());
        }

        @Override
        public void onCompensationStarting(SagaInstance instance) {
            print("  compensating in reverse order");
        }

        @Override
        public void onStepCompensated(SagaInstance instance, String step) {
            print("  compensated " + step);
        }

        @Override
        public void onCompleted(SagaInstance instance) {
            print("saga completed");
        }

        @Override
        public void onCompensated(SagaInstance instance) {
            print("saga compensated");
        }

        @Override
        public void onFailed(SagaInstance instance) {
            print("saga FAILED and needs attention: " + instance.compensationFailure());
        }
    }
}
