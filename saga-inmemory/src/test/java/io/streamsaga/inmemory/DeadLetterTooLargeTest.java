package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * A dead letter the transport refuses as too large ({@link MessageTooLargeException}: on Kafka the original just under
 * max.request.size with the dlt-* headers added) was refused again at every redelivery, so its partition never moved
 * on. The redelivery now sends it without the payload, naming where the original is; and an error message of any
 * length goes into its header bounded.
 */
class DeadLetterTooLargeTest {
    private final InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    /** The transport, refusing a dead letter with a payload as too large. */
    private final InMemoryTransport transport = mock(InMemoryTransport.class, delegatesTo(real));
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
            .build();
    private final List<Message> refused = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        real.close();
    }

    private void refuseDeadLettersWithAPayload() {
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (message.topic().endsWith(MessageHeaders.DEAD_LETTER_SUFFIX) && message.payload() != null) {
                refused.add(message);
                return CompletableFuture.failedFuture(new MessageTooLargeException(message.topic(), "too large", null));
            }
            return real.send(message);
        }).when(transport).send(any(Message.class));
    }

    @Test
    void aDeadLetterRefusedAsTooLargeIsSentWithoutItsPayloadAtTheRecordsRedeliveryAndThePartitionMovesOn() {
        refuseDeadLettersWithAPayload();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "orders", Message.class, (order, ctx) -> {
            Map<?, ?> payload = (Map<?, ?>) order.payload();
            if (payload.containsKey("huge")) {
                throw new IllegalStateException("declined");
            }
            handled.add((String) payload.get("id"));
        });
        bus.publish(Message.builder("orders").key("k").type("order").payload(Map.of("huge", "x")).build());
        bus.publish(Message.builder("orders").key("k").type("order").payload(Map.of("id", "after")).build());

        real.drainAll();
        real.drainAll(); // the redelivery

        assertEquals(1, refused.size(), "refused once with the payload, then sent without it");
        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        assertNull(dead.get(0).payload());
        assertTrue(dead.get(0).headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED), dead.get(0).headers().toString());
        assertEquals("0", dead.get(0).headers().get(MessageHeaders.DLT_ORIGINAL_OFFSET));
        assertEquals("declined", dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE));
        assertEquals(refused.get(0).id(), dead.get(0).id(), "the same dead letter, its payload left out");
        assertEquals(List.of("after"), handled);
    }

    @Test
    void anErrorMessageOfAnyLengthGoesIntoTheDeadLettersHeaderBounded() {
        String huge = "declined: " + "x".repeat(100_000);
        bus.subscribe("payments", "orders", Message.class, (order, ctx) -> {
            throw new IllegalStateException(huge);
        });
        bus.publish(Message.builder("orders").key("k").type("order").payload(Map.of("id", "1")).build());

        real.drainAll();

        String header = real.messages("orders.DLT").get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE);
        assertTrue(header.startsWith("declined: xxx") && header.endsWith("... (100010 characters)")
                && header.length() < 4200, header.length() + " characters: " + header.substring(0, 40));
    }
}
