package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The step a record's dead letter reached after the transport refused it as too large (the payload left out, then
 * the headers, then the key) is what a member learnt while it held the record's partition: once another member of
 * the group had the partition in between, the member that gets it back starts the record's dead letter whole again,
 * as any member new to it does, rather than from a step taken before (the limit may have been raised since).
 */
class DeadLetterStepAfterAReassignmentTest {
    private static final int LIMIT = 20_000;

    private final AtomicInteger limit = new AtomicInteger(LIMIT);
    private final InMemoryTransport real = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL)
            .build();
    private final List<Message> refused = new CopyOnWriteArrayList<>();
    private final InMemoryTransport transport = SizeLimitedTransport.over(real, limit::get, refused);
    private final EventBus first = bus();
    private final EventBus second = bus();

    private EventBus bus() {
        return EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE).build();
    }

    @AfterEach
    void close() {
        first.close();
        second.close();
        real.close();
    }

    @Test
    void aMemberGettingAPartitionBackAfterAnotherHadItSendsTheDeadLetterWholeAgainNotFromItsEarlierStep() {
        List<String> deliveredTo = new CopyOnWriteArrayList<>();
        first.subscribe("payments", "orders", Message.class, (order, ctx) -> {
            deliveredTo.add("first");
            throw new IllegalStateException("declined");
        });
        // a payload that fits the limit, but not with the dead-letter headers added
        bus().publish(Message.builder("orders").key("k").type("order").payload("p".repeat(LIMIT - 100)).build())
                .toCompletableFuture().join();
        real.drainAll();
        assertEquals(1, refused.size(), "the whole dead letter refused: " + refused);

        Subscription other = second.subscribe("payments", "orders", Message.class, (order, ctx) -> {
            deliveredTo.add("second");
            throw new IllegalStateException("declined");
        });
        real.drainAll();
        // the transport's one partition went to the second member, which met the same refusal
        assertEquals(List.of("first", "second"), deliveredTo);
        assertEquals(2, refused.size());
        assertNotNull(refused.get(1).payload(), "the second member tried it whole too");

        limit.set(2 * LIMIT); // an operator raised the limit
        other.close(); // the partition goes back to the first member
        real.drainAll();

        assertEquals(List.of("first", "second", "first"), deliveredTo);
        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        assertFalse(dead.get(0).headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED),
                "sent whole, as the raised limit lets it: " + dead.get(0).headers());
        assertNotNull(dead.get(0).payload());
    }
}
