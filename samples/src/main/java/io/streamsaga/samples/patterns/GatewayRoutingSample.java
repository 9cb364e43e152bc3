package io.streamsaga.samples.patterns;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.routing.EventRouter;
import io.streamsaga.routing.UnmatchedPolicy;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Gateway routing, the source's {@code EventRouter}: one subscription to every topic dispatches
 * {@code order-created}, {@code payment-processed} and {@code inventory-*} to their handlers. A
 * {@code user-registered} event has no route: it is dead-lettered (the default), or with {@code --drop}
 * dropped with a warning and a metric.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.patterns.GatewayRoutingSample -Dexec.args="--drop"</pre>
 */
public final class GatewayRoutingSample {
    /** Event {@code order-created}. */
    public record OrderCreated(String orderId) {
    }

    /** Event {@code payment-processed}. */
    public record PaymentProcessed(String orderId, long amountCents) {
    }

    /** Event {@code inventory-updated}. */
    public record InventoryUpdated(String sku, int available) {
    }

    /** Event {@code user-registered}, for which no route exists. */
    public record UserRegistered(String userId) {
    }

    /** What happened. */
    public record Result(List<String> routed, List<String> deadLetteredTopics, long unmatchedCounted) {
    }

    private GatewayRoutingSample() {
    }

    public static void main(String[] args) {
        run(Arrays.asList(args).contains("--drop"), System.out);
    }

    public static Result run(boolean drop, PrintStream out) {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        InMemoryMetrics metrics = new InMemoryMetrics();
        try (EventBus bus = EventBus.builder(transport).metrics(metrics)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .register("inventory-updated", 1, InventoryUpdated.class)
                        .register("user-registered", 1, UserRegistered.class).build())
                .scheduler(new VirtualScheduler()).build()) {
            List<String> routed = new ArrayList<>();
            EventRouter.builder(bus).name("gateway")
                    .onTopic("order-created", OrderCreated.class, (e, ctx) -> {
                        routed.add(ctx.topic());
                        out.printf("order handler: %s (matched %s '%s')%n", e, ctx.kind(), ctx.matchedBy());
                    })
                    .onTopic("payment-processed", PaymentProcessed.class, (e, ctx) -> {
                        routed.add(ctx.topic());
                        out.printf("payment handler: %s (matched %s '%s')%n", e, ctx.kind(), ctx.matchedBy());
                    })
                    .onTopic("inventory-*", InventoryUpdated.class, (e, ctx) -> {
                        routed.add(ctx.topic());
                        out.printf("inventory handler: %s from topic %s (matched %s '%s')%n", e, ctx.topic(), ctx.kind(),
                                ctx.matchedBy());
                    })
                    .unmatched(drop ? UnmatchedPolicy.DROP : UnmatchedPolicy.DEAD_LETTER)
                    .build()
                    .subscribe("gateway"); // the source's @EventPattern('*')

            List<String> deadLettered = new ArrayList<>();
            bus.subscribe("ops", "user-registered.DLT", Message.class, (m, ctx) -> {
                deadLettered.add(m.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElse("?"));
                out.printf("ops: dead letter from %s after %s attempt(s): %s%n", m.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElse("?"),
                        m.header(MessageHeaders.DLT_ATTEMPTS).orElse("?"), m.header(MessageHeaders.DLT_ERROR_MESSAGE).orElse(""));
            });

            bus.publish("order-created", "o-1", new OrderCreated("o-1"));
            bus.publish("payment-processed", "o-1", new PaymentProcessed("o-1", 4_200));
            bus.publish("inventory-updated", "sku-1", new InventoryUpdated("sku-1", 7));
            bus.publish("user-registered", "u-1", new UserRegistered("u-1"));
            transport.drainAll();
            long unmatched = metrics.counter(EventRouter.UNMATCHED_METRIC);
            out.printf("routed %d message(s); %d dead-lettered%s; %s = %d%n", routed.size(), deadLettered.size(),
                    drop ? " (unmatched dropped with a warning)" : "", EventRouter.UNMATCHED_METRIC, unmatched);
            return new Result(routed, deadLettered, unmatched);
        } finally {
            transport.close();
        }
    }
}
