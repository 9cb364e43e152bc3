package io.streamsaga.samples.quickstart;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.InMemoryTransport;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** The README's quick start, compiled and run so that it cannot drift from the library. */
public final class QuickStart {

    @EventType("order-created")
    public record OrderCreated(String orderId, long amount) {
    }

    @EventType("payment-processed")
    public record PaymentProcessed(String orderId) {
    }

    /** Declarative handlers, as NestJS's {@code @EventPattern('payment-processed')}. */
    public static class AnalyticsService {
        final List<String> payments = new CopyOnWriteArrayList<>();
        final CountDownLatch done = new CountDownLatch(1);

        @EventPattern("payment-processed")
        public void trackPayment(PaymentProcessed payment) {
            System.out.println("payment for " + payment.orderId());
            payments.add(payment.orderId());
            done.countDown();
        }
    }

    private QuickStart() {
    }

    public static void main(String[] args) throws InterruptedException {
        System.out.println("payments tracked: " + run());
    }

    /** Runs the quick start; returns the order ids whose payment Analytics saw. */
    public static List<String> run() throws InterruptedException {
        TypeRegistry types = TypeRegistry.builder()
                .register(OrderCreated.class)
                .register(PaymentProcessed.class)
                .build();
        InMemoryTransport transport = InMemoryTransport.create();      // a Kafka transport in production
        EventBus bus = EventBus.builder(transport).types(types).build();

        // A functional handler; publishing inside it carries the correlation id along and sets the causation id.
        // The bus waits for the publish before it acknowledges order-created: one that fails fails the handler.
        bus.subscribe("payment-service", "order-created", OrderCreated.class,
                (order, ctx) -> bus.publish("payment-processed", order.orderId(), new PaymentProcessed(order.orderId())));
        AnalyticsService analytics = new AnalyticsService();
        bus.register("analytics-service", analytics);

        bus.publish("order-created", "order-1", new OrderCreated("order-1", 2500));

        analytics.done.await(10, TimeUnit.SECONDS); // delivery is asynchronous on the default transport
        bus.close();
        transport.close();
        return List.copyOf(analytics.payments);
    }
}
