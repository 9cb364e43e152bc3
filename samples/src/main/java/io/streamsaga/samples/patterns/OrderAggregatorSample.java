package io.streamsaga.samples.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The source's {@code OrderAggregator}: {@code order-created} + {@code payment-processed} +
 * {@code inventory-reserved} for one order id make one {@code order-completed}. With
 * {@code --missing-payment} the payment never comes: after 15 minutes on the virtual clock the group
 * times out and its parts are dead-lettered instead of waiting forever.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.patterns.OrderAggregatorSample -Dexec.args="--missing-payment"</pre>
 */
public final class OrderAggregatorSample {
    /** Event {@code order-created}. */
    public record OrderCreated(String orderId, String userId) {
    }

    /** Event {@code payment-processed}. */
    public record PaymentProcessed(String orderId, String paymentId) {
    }

    /** Event {@code inventory-reserved}. */
    public record InventoryReserved(String orderId) {
    }

    /** Event {@code order-completed}, the aggregate (the source's {@code Partial<Order>} made whole). */
    public record OrderCompleted(String id, String userId, String paymentId, boolean inventoryReserved) {
    }

    /** What happened. */
    public record Result(List<OrderCompleted> completed, List<String> deadLetteredTypes) {
    }

    private OrderAggregatorSample() {
    }

    public static void main(String[] args) {
        run(Arrays.asList(args).contains("--missing-payment"), System.out);
    }

    public static Result run(boolean missingPayment, PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .register("inventory-reserved", 1, InventoryReserved.class)
                        .register("order-completed", 1, OrderCompleted.class).build())
                .scheduler(scheduler).build()) {
            EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
                    .name("order-aggregator")
                    .correlateByField("orderId")
                    // the source's isComplete(order)
                    .completeWhen(group -> group.hasTypes("order-created", "payment-processed", "inventory-reserved"))
                    .timeout(Duration.ofMinutes(15), TimeoutPolicy.DEAD_LETTER)
                    .onRelease(aggregate -> emitOrderCompleted(bus, aggregate, out))
                    .build();
            aggregator.subscribe("order-aggregator", "order-created", "payment-processed", "inventory-reserved");

            List<OrderCompleted> completed = new ArrayList<>();
            bus.subscribe("notification", "order-completed", OrderCompleted.class, (order, ctx) -> {
                completed.add(order);
                out.println("notification: " + order);
            });
            List<String> deadLettered = new ArrayList<>();
            for (String topic : List.of("order-created", "payment-processed", "inventory-reserved")) {
                bus.subscribe("ops", topic + ".DLT", Message.class, (m, ctx) -> {
                    deadLettered.add(m.type());
                    out.printf("ops: dead letter %s (%s): %s%n", m.type(), m.header(MessageHeaders.DLT_REASON).orElse("?"),
                            m.header(MessageHeaders.DLT_ERROR_MESSAGE).orElse(""));
                });
            }

            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-9"));
            if (!missingPayment) {
                bus.publish("payment-processed", "o-1", new PaymentProcessed("o-1", "pay-3"));
            }
            bus.publish("inventory-reserved", "o-1", new InventoryReserved("o-1"));
            transport.drainAll();
            if (missingPayment) {
                out.println("clock: +15 minutes, the payment never arrived");
                scheduler.advance(Duration.ofMinutes(15));
                transport.drainAll();
            }
            return new Result(completed, deadLettered);
        } finally {
            transport.close();
        }
    }

    /** The source's {@code kafka.emit('order-completed', order)}, under an id derived from the order id. */
    private static void emitOrderCompleted(EventBus bus, Aggregate aggregate, PrintStream out) {
        OrderCreated created = aggregate.first(OrderCreated.class).orElseThrow();
        PaymentProcessed payment = aggregate.first(PaymentProcessed.class).orElseThrow();
        boolean reserved = aggregate.first(InventoryReserved.class).isPresent();
        out.printf("aggregator: order %s has all %d parts, emitting order-completed%n", aggregate.key(),
                aggregate.group().size());
        // A deterministic id: if the release is retried, an idempotent consumer downstream drops the copy.
        bus.publish(Message.builder("order-completed").id("order-completed-" + aggregate.key()).key(aggregate.key())
                .type("order-completed")
                .payload(new OrderCompleted(created.orderId(), created.userId(), payment.paymentId(), reserved))
                .build()).toCompletableFuture().join();
    }
}
