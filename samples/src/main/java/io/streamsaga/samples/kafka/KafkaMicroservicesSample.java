package io.streamsaga.samples.kafka;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.micrometer.MicrometerMetricsRecorder;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The source's event-driven microservices over Apache Kafka: an Order service publishes
 * {@code order-created}; a Payment service consumes it and emits {@code payment-processed}; an Analytics
 * service counts orders and payments and observes each order's amount into Micrometer, through its bus's
 * {@link MicrometerMetricsRecorder}. Each service has its own transport (its own Kafka clients and consumer
 * group), as separate processes would.
 *
 * <p>Run with {@code --bootstrap-servers host:port} against an existing cluster, or without it to start a
 * local embedded broker for the demo. {@code --orders N} sets how many orders to publish (default 5);
 * {@code --exactly-once} runs the Payment service's consume-transform-publish in Kafka transactions.
 */
public final class KafkaMicroservicesSample {

    @EventType("order-created")
    public record OrderCreated(String orderId, String userId, long amount) {
    }

    @EventType("payment-processed")
    public record PaymentProcessed(String orderId, String paymentId, String status) {
    }

    /** What the run did, for the sample's test. */
    public record Result(int ordersPublished, int paymentsEmitted, long ordersCounted, long revenue, long paymentsCounted) {
    }

    private KafkaMicroservicesSample() {
    }

    public static void main(String[] args) throws Exception {
        quietKafkaLogs();
        String bootstrap = null;
        int orders = 5;
        boolean exactlyOnce = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap-servers" -> bootstrap = args[++i];
                case "--orders" -> orders = Integer.parseInt(args[++i]);
                case "--exactly-once" -> exactlyOnce = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i]
                        + "'; use --bootstrap-servers host:port, --orders N, --exactly-once");
            }
        }
        if (bootstrap != null) {
            System.out.println("Using the Kafka cluster at " + bootstrap);
            run(bootstrap, orders, exactlyOnce, System.out);
            return;
        }
        System.out.println("Starting an embedded single-node Kafka broker (KRaft) for the demo...");
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start()) {
            System.out.println("Broker up at " + broker.bootstrapServers());
            run(broker.bootstrapServers(), orders, exactlyOnce, System.out);
        }
    }

    /**
     * Runs the three services against {@code bootstrapServers} until the Payment service has emitted a payment for
     * every order and Analytics has counted every order and every payment.
     */
    public static Result run(String bootstrapServers, int orders, boolean exactlyOnce, PrintStream out) throws InterruptedException {
        // Unique topic names per run, so repeated demos on one cluster do not see each other's events.
        String run = UUID.randomUUID().toString().substring(0, 6);
        String orderTopic = "order-created-" + run;
        String paymentTopic = "payment-processed-" + run;
        TypeRegistry types = TypeRegistry.builder().register(OrderCreated.class).register(PaymentProcessed.class).build();

        KafkaTransport.Builder paymentTransport = KafkaTransport.builder().bootstrapServers(bootstrapServers)
                .clientIdPrefix("payment-service");
        if (exactlyOnce) {
            paymentTransport.exactlyOnce("payment-service-" + run);
        }
        // One latch per count the result reads: Analytics hears order-created on a member of its own, which nothing
        // orders before the payment chain, so waiting for the payments alone could read the orders before they were
        // all counted; and without exactly-once a payment can reach Analytics before its handler counted it emitted.
        CountDownLatch allOrdersCounted = new CountDownLatch(orders);
        CountDownLatch allPaymentsCounted = new CountDownLatch(orders);
        CountDownLatch allPaymentsEmitted = new CountDownLatch(orders);
        AtomicLong paymentsEmitted = new AtomicLong();
        SimpleMeterRegistry analyticsRegistry = new SimpleMeterRegistry(); // a Prometheus registry in production
        try (KafkaTransport orderKafka = KafkaTransport.builder().bootstrapServers(bootstrapServers).clientIdPrefix("order-service").build();
             KafkaTransport paymentKafka = paymentTransport.build();
             KafkaTransport analyticsKafka = KafkaTransport.builder().bootstrapServers(bootstrapServers).clientIdPrefix("analytics-service").build();
             EventBus orderBus = EventBus.builder(orderKafka).types(types).build();
             EventBus paymentBus = EventBus.builder(paymentKafka).types(types).build();
             EventBus analyticsBus = EventBus.builder(analyticsKafka).types(types)
                     .metrics(new MicrometerMetricsRecorder(analyticsRegistry)).build()) {

            Analytics analytics = new Analytics(analyticsBus.metrics(), analyticsRegistry, out, allOrdersCounted, allPaymentsCounted);
            analyticsBus.subscribe("analytics-service", orderTopic, OrderCreated.class, (order, ctx) -> analytics.trackOrder(order));
            analyticsBus.subscribe("analytics-service", paymentTopic, PaymentProcessed.class, (payment, ctx) -> analytics.trackPayment(payment));
            paymentBus.subscribe("payment-service", orderTopic, OrderCreated.class, (order, ctx) -> {
                String paymentId = "pay-" + order.orderId();
                out.printf("[payment]   charged %s %d for %s -> payment-processed%n", order.userId(), order.amount(), order.orderId());
                paymentBus.publish(paymentTopic, order.orderId(), new PaymentProcessed(order.orderId(), paymentId, "success"))
                        .toCompletableFuture().join();
                paymentsEmitted.incrementAndGet();
                allPaymentsEmitted.countDown();
            });

            for (int i = 1; i <= orders; i++) {
                OrderCreated order = new OrderCreated("order-" + i, "user-" + (i % 3), 100L * i);
                orderBus.publish(orderTopic, order.orderId(), order).toCompletableFuture().join();
                out.printf("[order]     published order-created %s (amount %d)%n", order.orderId(), order.amount());
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            boolean done = awaitUntil(deadline, allPaymentsEmitted) && awaitUntil(deadline, allOrdersCounted)
                    && awaitUntil(deadline, allPaymentsCounted);
            out.printf("[summary]   %s: orders_total=%d revenue=%d payments_total=%d (exactly-once: %s)%n",
                    done ? "done" : "TIMED OUT", analytics.orders(), analytics.revenue(), analytics.payments(), exactlyOnce);
            out.printf("[summary]   lag of analytics-service on %s: end offsets %s, committed %s%n", orderTopic,
                    orderKafka.endOffsets(orderTopic), orderKafka.committedOffsets("analytics-service", orderTopic));
            return new Result(orders, (int) paymentsEmitted.get(), analytics.orders(), analytics.revenue(), analytics.payments());
        }
    }

    /**
     * The Analytics service: the source's {@code metrics.increment('orders_total')}, {@code metrics.observe('order_amount',
     * data.amount)} and {@code metrics.increment('payments_total')}, recorded through its bus's recorder and read back
     * from the registry.
     */
    static final class Analytics {
        private final MetricsRecorder metrics;
        private final MeterRegistry registry;
        private final PrintStream out;
        private final CountDownLatch ordersCounted;
        private final CountDownLatch paymentsCounted;

        Analytics(MetricsRecorder metrics, MeterRegistry registry, PrintStream out, CountDownLatch ordersCounted,
                  CountDownLatch paymentsCounted) {
            this.metrics = metrics;
            this.registry = registry;
            this.out = out;
            this.ordersCounted = ordersCounted;
            this.paymentsCounted = paymentsCounted;
        }

        void trackOrder(OrderCreated order) {
            metrics.increment("orders_total", Map.of());
            metrics.observe("order_amount", order.amount(), Map.of());
            out.printf("[analytics] orders_total=%d order_amount=%d%n", orders(), order.amount());
            ordersCounted.countDown();
        }

        void trackPayment(PaymentProcessed payment) {
            metrics.increment("payments_total", Map.of());
            out.printf("[analytics] payments_total=%d (%s %s)%n", payments(), payment.paymentId(), payment.status());
            paymentsCounted.countDown();
        }

        long orders() {
            Counter counter = registry.find("orders_total").counter();
            return counter == null ? 0 : (long) counter.count();
        }

        long revenue() {
            DistributionSummary amounts = registry.find("order_amount").summary();
            return amounts == null ? 0 : (long) amounts.totalAmount();
        }

        long payments() {
            Counter counter = registry.find("payments_total").counter();
            return counter == null ? 0 : (long) counter.count();
        }
    }

    /** Waits for {@code latch} until {@code deadline} ({@link System#nanoTime}); false if it passed first. */
    private static boolean awaitUntil(long deadline, CountDownLatch latch) throws InterruptedException {
        return latch.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    /** Kafka's clients log every connection at INFO; the demo shows the services' own lines. */
    static void quietKafkaLogs() {
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka", "error");
        System.setProperty("org.slf4j.simpleLogger.log.kafka", "error");
        System.setProperty("org.slf4j.simpleLogger.log.state.change.logger", "warn");
        System.setProperty("org.slf4j.simpleLogger.log.io.streamsaga.kafka", "warn");
    }
}
