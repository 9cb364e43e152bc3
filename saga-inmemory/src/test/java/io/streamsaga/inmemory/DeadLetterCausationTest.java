package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/kafka.md, dead-letter topics: the dead letter keeps the original headers, plus "causation-id: the
 * original message id (when the original had none)".
 */
class DeadLetterCausationTest {
    record OrderCreated(String orderId) {
    }

    record PaymentRequested(String orderId) {
    }

    @Test
    void aDeadLetterKeepsTheCausationIdOfAnOriginalThatHadOne() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                        .register("payment-requested", 1, PaymentRequested.class).build())
                .build();
        bus.subscribe("orders", "order-created", OrderCreated.class,
                (event, ctx) -> bus.publish("payment-requested", event.orderId(), new PaymentRequested(event.orderId())));
        bus.subscribe("payments", "payment-requested", PaymentRequested.class, (event, ctx) -> {
            throw new IllegalStateException("card service down");
        });

        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        transport.drainAll();

        Message created = transport.messages("order-created").get(0);
        Message requested = transport.messages("payment-requested").get(0);
        assertEquals(created.id(), requested.causationId().orElseThrow());
        List<Message> dead = transport.messages("payment-requested.DLT");
        assertEquals(1, dead.size());
        assertEquals("handler-failed", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals(created.id(), dead.get(0).causationId().orElseThrow(),
                "the original's causation id must survive on its dead letter");
    }
}
