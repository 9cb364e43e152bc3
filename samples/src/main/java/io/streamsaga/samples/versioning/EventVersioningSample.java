package io.streamsaga.samples.versioning;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.message.MessageHeaders;

import java.io.PrintStream;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The source's event versioning: {@code order-created} gained a {@code currency} field in version 2, and the
 * payment service, written against version 2 only, still reads what an order service not yet upgraded publishes.
 * Where the source's handler tests {@code event.version === 1} and fills the default itself, here the type registry
 * holds an upcaster from version 1 (the default currency {@code USD}) that the codec runs on the JSON before binding,
 * so the handler only ever sees {@code OrderCreatedV2}. An event newer than the handler knows (version 3 from a
 * service upgraded first) is not guessed at: it is dead-lettered with the reason, and nothing is lost.
 *
 * <p>Each service has its own bus and registry over one transport that carries JSON bytes, as Kafka does.
 * Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.versioning.EventVersioningSample}.
 */
public final class EventVersioningSample {

    /** {@code order-created} as the order service not yet upgraded publishes it. */
    @EventType(value = "order-created", version = 1)
    public record OrderCreatedV1(String orderId, long amount) {
    }

    /** {@code order-created} version 2: the new {@code currency} field. */
    @EventType(value = "order-created", version = 2)
    public record OrderCreatedV2(String orderId, long amount, String currency) {
    }

    /** {@code order-created} version 3, published by a service upgraded before the payment service. */
    @EventType(value = "order-created", version = 3)
    public record OrderCreatedV3(String orderId, long amount, String currency, String channel) {
    }

    /** The payment service, which knows version 2 only. */
    public static final class PaymentService {
        private final PrintStream out;
        private final List<OrderCreatedV2> handled = new CopyOnWriteArrayList<>();

        PaymentService(PrintStream out) {
            this.out = out;
        }

        @EventPattern("order-created")
        public void handleOrder(OrderCreatedV2 event) {
            handled.add(event);
            out.println("[payment-service] charging " + event.amount() + " " + event.currency() + " for " + event.orderId());
        }
    }

    /** What the payment service handled, and why the events it could not read were dead-lettered. */
    public record Result(List<OrderCreatedV2> handled, List<String> deadLetters) {
    }

    private EventVersioningSample() {
    }

    public static void main(String[] args) {
        run(System.out);
    }

    /** Publishes one event of each version and delivers them to the payment service. */
    public static Result run(PrintStream out) {
        InMemoryTransport transport = InMemoryTransport.builder()
                .deliveryMode(DeliveryMode.MANUAL)
                .serializePayloads(true) // JSON bytes on the log, as on Kafka
                .build();
        try (EventBus oldOrderService = bus(transport, TypeRegistry.builder().register(OrderCreatedV1.class));
             EventBus orderService = bus(transport, TypeRegistry.builder().register(OrderCreatedV2.class));
             EventBus newerOrderService = bus(transport, TypeRegistry.builder().register(OrderCreatedV3.class));
             EventBus payments = bus(transport, TypeRegistry.builder()
                     .register(OrderCreatedV2.class)
                     .upcaster("order-created", 1, v1 -> v1.put("currency", "USD")))) { // the source's default
            PaymentService paymentService = new PaymentService(out);
            payments.register("payment-service", paymentService);

            oldOrderService.publish("order-created", "o-1", new OrderCreatedV1("o-1", 2500));
            orderService.publish("order-created", "o-2", new OrderCreatedV2("o-2", 1800, "EUR"));
            newerOrderService.publish("order-created", "o-3", new OrderCreatedV3("o-3", 900, "VND", "mobile"));
            transport.drainAll();

            List<String> deadLetters = transport.messages("order-created" + MessageHeaders.DEAD_LETTER_SUFFIX).stream()
                    .map(m -> m.key() + ": " + m.header(MessageHeaders.DLT_REASON).orElse("") + ", "
                            + m.header(MessageHeaders.DLT_ERROR_MESSAGE).orElse(""))
                    .toList();
            deadLetters.forEach(d -> out.println("[dead letter]     " + d));
            return new Result(List.copyOf(paymentService.handled), deadLetters);
        } finally {
            transport.close();
        }
    }

    private static EventBus bus(InMemoryTransport transport, TypeRegistry.Builder types) {
        return EventBus.builder(transport).types(types.build()).build();
    }
}
