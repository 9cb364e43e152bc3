package io.streamsaga.samples.microservices;

import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The source's event-driven microservices: an Order service publishes {@code order-created}; Payment,
 * Inventory, Notification and Analytics services react, each in its own consumer group; Payment
 * publishes {@code payment-processed}, which Analytics counts too. Runs on the in-memory bus and prints
 * what each service did, in order, then the metrics.
 *
 * <p>Payment, Notification and Analytics are plain objects with {@code @EventPattern} methods, as the
 * NestJS controllers of the source; Inventory subscribes functionally. Delivery is driven by
 * {@code drainAll()} (MANUAL mode) so the printed timeline is the same on every run; the services would
 * behave the same on the asynchronous default or on Kafka.
 */
public final class EventDrivenMicroservicesSample {

    /** Published by the Order service. */
    @EventType("order-created")
    public record OrderCreated(String orderId, String userId, long amount) {
    }

    /** Published by the Payment service for every order. */
    @EventType("payment-processed")
    public record PaymentProcessed(String orderId, String paymentId, String status) {
    }

    /**
     * What happened, in order, and the numbers, so that a test can check the run; {@code revenue} is the sum of the
     * {@code order_amount} distribution Analytics observed.
     */
    public record Outcome(List<String> timeline, long ordersCounted, long paymentsCounted, long revenue,
                         List<Message> paymentMessages, List<Message> orderMessages, InMemoryMetrics metrics) {
    }

    /** Orders above this amount (in cents) are declined by the payment provider of the sample. */
    static final long PAYMENT_LIMIT = 100_000;

    private EventDrivenMicroservicesSample() {
    }

    public static void main(String[] args) {
        run(System.out);
    }

    /** Runs the scenario, printing to {@code out}. */
    public static Outcome run(PrintStream out) {
        List<String> timeline = new ArrayList<>();
        Timeline log = line -> {
            timeline.add(line);
            out.println(line);
        };
        InMemoryMetrics metrics = new InMemoryMetrics();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(4).deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register(OrderCreated.class).register(PaymentProcessed.class).build())
                .metrics(metrics)
                .build()) {
            OrderService orders = new OrderService(bus, log);
            bus.register("payment-service", new PaymentService(bus, log));
            InventoryService inventory = new InventoryService(log);
            bus.subscribe("inventory-service", "order-created", OrderCreated.class, inventory::reserve);
            bus.register("notification-service", new NotificationService(log));
            AnalyticsService analytics = new AnalyticsService(bus.metrics(), log);
            bus.register("analytics-service", analytics);
            List<Message> paymentMessages = new ArrayList<>();
            List<Message> orderMessages = new ArrayList<>();
            // An audit log over every topic (a wildcard), keeping the raw messages with their headers.
            bus.subscribe("audit-log", "*", Message.class, (message, ctx) ->
                    (message.topic().equals("order-created") ? orderMessages : paymentMessages).add(message));

            out.println("== Order service publishes three orders ==");
            orders.createOrder("alice", 25_00);
            orders.createOrder("bob", 1_250_00);
            orders.createOrder("carol", 99_90);
            out.println("== Services react ==");
            int delivered = transport.drainAll();
            out.println("== " + delivered + " deliveries; metrics ==");
            out.println(metrics.report());
            return new Outcome(List.copyOf(timeline), analytics.orders.get(), analytics.payments.get(),
                    (long) metrics.observations("order_amount", Map.of()).sum(), List.copyOf(paymentMessages), List.copyOf(orderMessages), metrics);
        } finally {
            transport.close();
        }
    }

    /** Where the services say what they did. */
    @FunctionalInterface
    interface Timeline {
        void add(String line);
    }

    /** The producer: saves an order and publishes {@code order-created}. */
    static final class OrderService {
        private final EventBus bus;
        private final Timeline log;
        private final AtomicInteger ids = new AtomicInteger();

        OrderService(EventBus bus, Timeline log) {
            this.bus = bus;
            this.log = log;
        }

        void createOrder(String userId, long amount) {
            OrderCreated event = new OrderCreated("order-" + ids.incrementAndGet(), userId, amount);
            bus.publish("order-created", event.orderId(), event).toCompletableFuture().join();
            log.add("[order]        created " + event.orderId() + " for " + userId + ", amount " + amount);
        }
    }

    /** Consumer and producer: charges the order and publishes {@code payment-processed}. */
    public static final class PaymentService {
        private final EventBus bus;
        private final Timeline log;

        PaymentService(EventBus bus, Timeline log) {
            this.bus = bus;
            this.log = log;
        }

        @EventPattern("order-created")
        public void handleOrder(OrderCreated order) {
            String status = order.amount() <= PAYMENT_LIMIT ? "success" : "declined";
            PaymentProcessed payment = new PaymentProcessed(order.orderId(), "pay-" + order.orderId(), status);
            // Published inside the handler: the bus copies the correlation id and sets the causation id.
            bus.publish("payment-processed", order.orderId(), payment).toCompletableFuture().join();
            log.add("[payment]      " + status + " " + payment.paymentId() + " for " + order.orderId());
        }
    }

    /** Reserves stock for each order (a functional subscription). */
    static final class InventoryService {
        private final Timeline log;

        InventoryService(Timeline log) {
            this.log = log;
        }

        void reserve(OrderCreated order, DeliveryContext context) {
            log.add("[inventory]    reserved items of " + order.orderId() + " (partition " + context.partition()
                    + ", offset " + context.offset() + ")");
        }
    }

    /** Tells the customer. */
    public static final class NotificationService {
        private final Timeline log;

        NotificationService(Timeline log) {
            this.log = log;
        }

        @EventPattern("order-created")
        public void confirm(OrderCreated order) {
            log.add("[notification] e-mailed " + order.userId() + ": order " + order.orderId() + " received");
        }
    }

    /**
     * Counts orders and payments and observes each order's amount, as the source's AnalyticsService, through the bus's
     * recorder (its {@code metrics.increment} and {@code metrics.observe}).
     */
    public static final class AnalyticsService {
        private final MetricsRecorder metrics;
        private final Timeline log;
        final AtomicLong orders = new AtomicLong();
        final AtomicLong payments = new AtomicLong();

        AnalyticsService(MetricsRecorder metrics, Timeline log) {
            this.metrics = metrics;
            this.log = log;
        }

        @EventPattern("order-created")
        public void trackOrder(OrderCreated order) {
            orders.incrementAndGet();
            metrics.increment("orders_total", Map.of());
            metrics.observe("order_amount", order.amount(), Map.of());
            log.add("[analytics]    orders_total=" + orders.get() + ", order_amount=" + order.amount());
        }

        @EventPattern("payment-processed")
        public void trackPayment(PaymentProcessed payment) {
            payments.incrementAndGet();
            metrics.increment("payments_total", Map.of("status", payment.status()));
            log.add("[analytics]    payments_total=" + payments.get() + " (" + payment.orderId() + " " + payment.status() + ")");
        }
    }
}
