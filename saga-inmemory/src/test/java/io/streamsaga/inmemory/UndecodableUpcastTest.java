package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * EventBus: "a message that cannot be decoded is dead-lettered at once. One bad message never stops a
 * consumer" - also when the upcaster chain cannot lift a malformed old payload.
 */
class UndecodableUpcastTest {
    record OrderCreatedV2(String orderId, long amountCents) {
    }

    @Test
    void anOldPayloadTheUpcasterCannotLiftIsDeadLetteredAsUndecodableAndTheConsumerGoesOn() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1)
                .deliveryMode(DeliveryMode.MANUAL).serializePayloads(true).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder()
                        .register("order-created", 2, OrderCreatedV2.class)
                        // v1 had "amount" in units; a malformed v1 without it makes the upcaster throw (NPE)
                        .upcaster("order-created", 1, v1 -> v1.put("amountCents", v1.get("amount").asLong() * 100))
                        .build())
                .build();
        List<OrderCreatedV2> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "order-created", OrderCreatedV2.class, (event, ctx) -> handled.add(event));

        bus.publish(Message.builder("order-created").key("k").type("order-created").version(1)
                .payload("{\"orderId\":\"bad\"}".getBytes(StandardCharsets.UTF_8)).build());
        bus.publish("order-created", "k", new OrderCreatedV2("good", 500));
        transport.drainAll();

        assertEquals(List.of(new OrderCreatedV2("good", 500)), handled, "the consumer must go on past the bad message");
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size());
        assertEquals("undecodable", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
    }
}
