package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.SizeLimitedTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A part of a timed-out group whose dead letter the transport refused as too large ({@link MessageTooLargeException}:
 * a part just under the limit, with the dead-letter headers added) failed the timeout's outcome, which reopened the
 * group and timed it out again, for ever, the part never dead-lettered. The aggregator now sends that dead letter
 * again at once, leaving out the payload, then the part's headers too, then its key too, each marked by a header, and
 * naming the part's message id; the group is closed as dead-lettered.
 */
class AggregatorDeadLetterTooLargeTest {
    record Item(String orderId, String note) {
    }

    /** The most characters the transport takes in a message (see {@link SizeLimitedTransport#size}). */
    private static final int LIMIT = 20_000;
    /** Characters of a field, key or header that keep a part within the limit, but not its dead letter. */
    private static final int NEAR_LIMIT = LIMIT - 150;
    private static final Duration TIMEOUT = Duration.ofMinutes(5);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final AtomicInteger limit = new AtomicInteger(LIMIT);
    private final InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final List<Message> refused = new CopyOnWriteArrayList<>();
    private final EventBus bus = EventBus.builder(SizeLimitedTransport.over(real, limit::get, refused)).scheduler(scheduler)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
            .correlateByField("orderId").completeOnSize(2).timeout(TIMEOUT, TimeoutPolicy.DEAD_LETTER)
            .onRelease(aggregate -> { })
            .build();

    @AfterEach
    void close() {
        aggregator.close();
        bus.close();
        real.close();
    }

    /** Publishes part-1 of order o-1 under {@code key}, with {@code headers} and {@code note}, and lets its group time out. */
    private void aPartTimesOut(String key, Map<String, String> headers, String note) {
        aggregator.subscribe("aggregator", "item");
        bus.publish(Message.builder("item").id("part-1").key(key).type("item").headers(headers)
                .payload(new Item("o-1", note)).build()).toCompletableFuture().join();
        real.drainAll();
        scheduler.advance(TIMEOUT);
    }

    private List<Message> refusedDeadLetters() {
        return refused.stream().filter(m -> m.topic().equals("item.DLT")).toList();
    }

    @Test
    void aTimedOutPartWhoseDeadLetterIsTooLargeIsDeadLetteredWithoutItsPayloadAndTheGroupCloses() {
        aPartTimesOut("o-1", Map.of(), "x".repeat(NEAR_LIMIT));
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregator.group("o-1").orElseThrow().state());
        scheduler.advance(Duration.ofHours(3)); // the group's timeout would strike again, were it reopened

        assertEquals(1, refusedDeadLetters().size(), "refused once, whole: " + refusedDeadLetters().size());
        List<Message> dead = real.messages("item.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertNull(deadLetter.payload());
        assertEquals("o-1", deadLetter.key());
        assertEquals("item", deadLetter.type());
        Map<String, String> headers = deadLetter.headers();
        assertTrue(headers.containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED), headers.toString());
        assertEquals("part-1", headers.get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID));
        assertEquals("item", headers.get(MessageHeaders.DLT_ORIGINAL_TOPIC));
        assertEquals("items", headers.get(MessageHeaders.DLT_ORIGINAL_GROUP));
        assertEquals("aggregation-timeout", headers.get(MessageHeaders.DLT_REASON));
        assertEquals(refusedDeadLetters().get(0).id(), deadLetter.id(), "the same dead letter, less of it");
    }

    @ParameterizedTest(name = "refused as {0}")
    @EnumSource(SizeLimitedTransport.Refusal.class)
    void aTimedOutPartWhoseDeadLetterIsTooLargeStepsDownWhateverFormTheTransportsRefusalComesIn(
            SizeLimitedTransport.Refusal form) {
        // Only a refusal failing the stage stepped down: one thrown by the transport's send reached the aggregator
        // as a retriable PublishException the bus wrapped it in, and the group was reopened and timed out for ever.
        InMemoryTransport another = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        List<Message> refusedHere = new CopyOnWriteArrayList<>();
        EventBus busHere = EventBus.builder(SizeLimitedTransport.over(another, () -> LIMIT, refusedHere, form))
                .scheduler(scheduler).types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
        try (EventAggregator aggregatorHere = EventAggregator.builder(busHere, new InMemoryAggregationStore())
                .name("items").correlateByField("orderId").completeOnSize(2).timeout(TIMEOUT, TimeoutPolicy.DEAD_LETTER)
                .onRelease(aggregate -> { }).build()) {
            aggregatorHere.subscribe("aggregator", "item");
            busHere.publish(Message.builder("item").id("part-1").key("o-1").type("item")
                    .payload(new Item("o-1", "x".repeat(NEAR_LIMIT))).build()).toCompletableFuture().join();
            another.drainAll();
            scheduler.advance(TIMEOUT);

            assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregatorHere.group("o-1").orElseThrow().state());
            List<Message> dead = another.messages("item.DLT");
            assertEquals(1, dead.size());
            assertNull(dead.get(0).payload());
            assertTrue(dead.get(0).headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED), dead.get(0).headers().toString());
            assertEquals(1, refusedHere.size(), "refused once, whole");
        } finally {
            busHere.close();
            another.close();
        }
    }

    @Test
    void aTimedOutPartWhoseDeadLetterIsStillTooLargeWithoutItsHeadersIsDeadLetteredWithoutItsKey() {
        String hugeKey = "k".repeat(NEAR_LIMIT);
        aPartTimesOut(hugeKey, Map.of("baggage", "b"), "small");

        assertEquals(3, refusedDeadLetters().size(), "refused whole, without the payload, without the headers");
        List<Message> dead = real.messages("item.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertNull(deadLetter.payload());
        assertTrue(deadLetter.key() == null, "the key is left out");
        Map<String, String> headers = deadLetter.headers();
        assertNull(headers.get("baggage"));
        assertTrue(headers.containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED), headers.toString());
        assertTrue(headers.containsKey(MessageHeaders.DLT_HEADERS_OMITTED), headers.toString());
        assertTrue(headers.get(MessageHeaders.DLT_KEY_OMITTED).contains("(" + NEAR_LIMIT + " characters)"),
                headers.toString());
        assertEquals("part-1", headers.get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID));
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregator.group("o-1").orElseThrow().state());
    }

    @Test
    void aTimedOutPartWhoseHugeTypeKeepsItsDeadLetterTooLargeWithoutItsKeyIsDeadLetteredWithoutItsType() {
        // The aggregator reads its topics as Message, so a part may carry any type, one of thousands of characters
        // too (a record something else wrote): every form kept it, so the group was reopened and timed out for ever.
        // Such a record arrives encoded: the bus refuses an object of a registered class under another type.
        String hugeType = "t".repeat(NEAR_LIMIT);
        aggregator.subscribe("aggregator", "item");
        bus.publish(Message.builder("item").id("part-1").key("o-1").type(hugeType)
                .payload(bus.codec().encode(new Item("o-1", "small"))).build()).toCompletableFuture().join();
        real.drainAll();
        scheduler.advance(TIMEOUT);

        assertEquals(4, refusedDeadLetters().size(), "refused whole, without the payload, the headers, the key");
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregator.group("o-1").orElseThrow().state());
        List<Message> dead = real.messages("item.DLT");
        assertEquals(1, dead.size());
        Message deadLetter = dead.get(0);
        assertEquals("item.DLT", deadLetter.type(), "what a Kafka record without an event-type header reads as");
        assertNull(deadLetter.payload());
        assertNull(deadLetter.key());
        Map<String, String> headers = deadLetter.headers();
        assertTrue(headers.containsKey(MessageHeaders.DLT_KEY_OMITTED), headers.toString());
        String typeOmitted = headers.get(MessageHeaders.DLT_TYPE_OMITTED);
        assertTrue(typeOmitted != null && typeOmitted.contains("(" + NEAR_LIMIT + " characters)")
                && typeOmitted.length() < 500, String.valueOf(typeOmitted));
        assertEquals("part-1", headers.get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID));
    }

    @Test
    void aTimedOutPartWhoseDeadLetterIsRefusedEvenWithoutItsKeyReopensItsGroupAndIsDeadLetteredOnceTheTransportTakesIt() {
        String hugeKey = "k".repeat(NEAR_LIMIT);
        aggregator.subscribe("aggregator", "item");
        bus.publish(Message.builder("item").id("part-1").key(hugeKey).type("item").payload(new Item("o-1", "small"))
                .build()).toCompletableFuture().join();
        real.drainAll();
        limit.set(150); // below the dead-letter headers themselves
        scheduler.advance(TIMEOUT);

        assertEquals(List.of(), real.messages("item.DLT").stream()
                .filter(m -> "part-1".equals(m.headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID))).toList());
        assertEquals(GroupState.OPEN, aggregator.group("o-1").orElseThrow().state(), "reopened, its part kept");

        limit.set(LIMIT);
        scheduler.advance(TIMEOUT);

        List<Message> dead = real.messages("item.DLT").stream()
                .filter(m -> "part-1".equals(m.headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID))).toList();
        assertEquals(1, dead.size(), "dead-lettered once the transport takes it");
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, aggregator.group("o-1").orElseThrow().state());
    }
}
