package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A dead letter the transport refused as too large ({@link MessageTooLargeException}) was sent again without its
 * payload at the record's redelivery; one still too large without it (the original's key or headers near the limit)
 * was refused at every redelivery for ever, its partition held and the records after it never handled. Each
 * redelivery now leaves out one thing more, the original's headers and then its key, keeping the pointers to the
 * original (topic, partition, offset, group, error), each omission marked by a header; a dead letter refused even
 * so waits, nothing lost, until the transport takes it.
 */
class DeadLetterStillTooLargeTest {
    /** The most characters the transport takes in a message (see {@link SizeLimitedTransport#size}). */
    private static final int LIMIT = 20_000;
    /**
     * The length of a key or header that keeps its record within the limit, but not its dead letter: the dead-letter
     * headers add some 250 characters.
     */
    private static final int NEAR_LIMIT = LIMIT - 150;
    /** Enough redeliveries for every step, and more: a record still held after them is held for ever. */
    private static final int DRAINS = 8;

    private final AtomicInteger limit = new AtomicInteger(LIMIT);
    private final InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final List<Message> refused = new CopyOnWriteArrayList<>();
    private final InMemoryTransport transport = SizeLimitedTransport.over(real, limit::get, refused);
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
            .build();
    private final List<String> handled = new CopyOnWriteArrayList<>();
    /** The partition of the record whose handler failed. */
    private final AtomicInteger failedIn = new AtomicInteger(-1);

    @BeforeEach
    void subscribe() {
        bus.subscribe("payments", "orders", Message.class, (order, ctx) -> {
            Map<?, ?> payload = (Map<?, ?>) order.payload();
            if (payload.containsKey("fail")) {
                failedIn.set(ctx.partition());
                throw new IllegalStateException("declined");
            }
            handled.add((String) payload.get("id"));
        });
    }

    @AfterEach
    void close() {
        bus.close();
        real.close();
    }

    private void publish(String key, Map<String, String> headers, Map<String, String> payload) {
        bus.publish(Message.builder("orders").key(key).type("order").headers(headers).payload(payload).build())
                .toCompletableFuture().join();
    }

    private void drain() {
        for (int i = 0; i < DRAINS; i++) {
            real.drainAll();
        }
    }

    private List<Message> refusedDeadLetters() {
        return refused.stream().filter(m -> m.topic().equals("orders.DLT")).toList();
    }

    private static void assertPointsAtTheOriginal(Message deadLetter, int partition) {
        Map<String, String> headers = deadLetter.headers();
        assertEquals("orders", headers.get(MessageHeaders.DLT_ORIGINAL_TOPIC), headers.toString());
        assertEquals(Integer.toString(partition), headers.get(MessageHeaders.DLT_ORIGINAL_PARTITION));
        assertEquals("0", headers.get(MessageHeaders.DLT_ORIGINAL_OFFSET));
        assertEquals("payments", headers.get(MessageHeaders.DLT_ORIGINAL_GROUP));
        assertEquals("handler-failed", headers.get(MessageHeaders.DLT_REASON));
        assertEquals(IllegalStateException.class.getName(), headers.get(MessageHeaders.DLT_ERROR_CLASS));
        assertEquals("declined", headers.get(MessageHeaders.DLT_ERROR_MESSAGE));
        assertEquals("1", headers.get(MessageHeaders.DLT_ATTEMPTS));
        assertEquals("order", deadLetter.type());
        assertNull(deadLetter.payload());
    }

    @Test
    void aDeadLetterStillTooLargeWithoutItsPayloadIsSentWithoutTheOriginalsHeadersAndThePartitionMovesOn() {
        publish("k", Map.of("baggage", "b".repeat(NEAR_LIMIT)), Map.of("fail", "x"));
        publish("k", Map.of(), Map.of("id", "after"));

        drain();

        List<Message> refusedDeadLetters = refusedDeadLetters();
        assertEquals(2, refusedDeadLetters.size(), "refused with the payload, then without it: " + refusedDeadLetters);
        assertNull(refusedDeadLetters.get(1).payload());
        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertPointsAtTheOriginal(deadLetter, failedIn.get());
        assertFalse(deadLetter.headers().containsKey("baggage"), "the original's headers are left out");
        assertTrue(deadLetter.headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED));
        int originalHeaders = real.messages("orders").get(0).headers().size(); // baggage and a correlation id
        assertTrue(deadLetter.headers().get(MessageHeaders.DLT_HEADERS_OMITTED).contains(originalHeaders + " header(s)"),
                deadLetter.headers().toString());
        assertFalse(deadLetter.headers().containsKey(MessageHeaders.DLT_KEY_OMITTED));
        assertEquals("k", deadLetter.key(), "the key is kept: the dead letter goes to the partition of the key's others");
        assertEquals(refusedDeadLetters.get(0).id(), deadLetter.id(), "the same dead letter, less of it");
        assertEquals(List.of("after"), handled);
    }

    @Test
    void aDeadLetterStillTooLargeWithoutTheOriginalsHeadersIsSentWithoutItsKeyAndThePartitionMovesOn() {
        String hugeKey = "k".repeat(NEAR_LIMIT);
        publish(hugeKey, Map.of("correlation-id", "c-1"), Map.of("fail", "x"));
        publish(hugeKey, Map.of(), Map.of("id", "after"));

        drain();

        List<Message> refusedDeadLetters = refusedDeadLetters();
        assertEquals(3, refusedDeadLetters.size(), "refused whole, without the payload, without the headers: "
                + refusedDeadLetters.size());
        assertFalse(refusedDeadLetters.get(2).headers().containsKey(MessageHeaders.CORRELATION_ID));
        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertPointsAtTheOriginal(deadLetter, failedIn.get());
        assertTrue(deadLetter.key() == null, "no key");
        assertTrue(deadLetter.headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED));
        assertTrue(deadLetter.headers().containsKey(MessageHeaders.DLT_HEADERS_OMITTED));
        String keyOmitted = deadLetter.headers().get(MessageHeaders.DLT_KEY_OMITTED);
        assertTrue(keyOmitted != null && keyOmitted.contains(hugeKey.length() + " characters")
                && keyOmitted.length() < 500, String.valueOf(keyOmitted).substring(0, 100));
        assertEquals(refusedDeadLetters.get(0).id(), deadLetter.id());
        assertEquals(List.of("after"), handled);
    }

    @Test
    void aDeadLetterStillTooLargeForItsOriginalsTypeIsSentUnderTheDeadLetterTopicsNameAndThePartitionMovesOn() {
        // The type is the one thing of the original every form kept: a record whose type alone took its dead letter
        // over the limit was held for ever, logged at ERROR at each redelivery.
        String hugeType = "t".repeat(NEAR_LIMIT);
        bus.publish(Message.builder("orders").key("k").type(hugeType).payload(Map.of("fail", "x")).build())
                .toCompletableFuture().join();
        publish("k", Map.of(), Map.of("id", "after"));

        drain();

        List<Message> refusedDeadLetters = refusedDeadLetters();
        assertEquals(4, refusedDeadLetters.size(), "refused whole, without the payload, the headers, the key: "
                + refusedDeadLetters.size());
        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertEquals("orders.DLT", deadLetter.type(), "what a Kafka record without an event-type header reads as");
        String typeOmitted = deadLetter.headers().get(MessageHeaders.DLT_TYPE_OMITTED);
        assertTrue(typeOmitted != null && typeOmitted.contains(hugeType.length() + " characters")
                && typeOmitted.length() < 500, String.valueOf(typeOmitted).substring(0, Math.min(100,
                String.valueOf(typeOmitted).length())));
        assertTrue(deadLetter.key() == null);
        assertNull(deadLetter.payload());
        assertTrue(deadLetter.headers().containsKey(MessageHeaders.DLT_KEY_OMITTED));
        assertEquals("0", deadLetter.headers().get(MessageHeaders.DLT_ORIGINAL_OFFSET));
        assertEquals(Integer.toString(failedIn.get()), deadLetter.headers().get(MessageHeaders.DLT_ORIGINAL_PARTITION));
        assertEquals(refusedDeadLetters.get(0).id(), deadLetter.id());
        assertEquals(List.of("after"), handled);
    }

    @Test
    void aDeadLetterRefusedEvenWithOnlyItsPointersHoldsTheRecordUntilTheTransportTakesItNothingLost() {
        String hugeKey = "k".repeat(NEAR_LIMIT);
        publish(hugeKey, Map.of(), Map.of("fail", "x"));
        publish(hugeKey, Map.of(), Map.of("id", "after"));
        limit.set(200); // less than the dead-letter headers themselves

        drain();

        assertEquals(List.of(), real.messages("orders.DLT"));
        assertEquals(List.of(), handled, "the record is not given up while no dead letter of it is written");
        List<Message> refusedDeadLetters = refusedDeadLetters();
        Message last = refusedDeadLetters.get(refusedDeadLetters.size() - 1);
        assertTrue(last.key() == null, "the last one tried has no key");
        assertTrue(last.headers().containsKey(MessageHeaders.DLT_KEY_OMITTED), last.headers().toString());

        limit.set(LIMIT);
        drain();

        List<Message> dead = real.messages("orders.DLT");
        assertEquals(1, dead.size());
        assertPointsAtTheOriginal(dead.get(0), failedIn.get());
        assertEquals(List.of("after"), handled);
    }
}
