package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md: a sequence's parts are numbered 1..size. A part numbered beyond the size the group already
 * knows (or carrying another size) is malformed: it is refused with a non-retriable {@link AggregationException}
 * (so the bus dead-letters it) rather than kept and released with the group.
 */
class AggregatorSequenceNumberTest {
    record Item(String n) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();
    private final EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore())
            .name("items").completeOnSequenceEnd().onRelease(released::add).build();

    @AfterEach
    void close() {
        aggregator.close();
        bus.close();
        transport.close();
    }

    private static Message part(int number, boolean last, Integer size) {
        Message.Builder builder = Message.builder("item").type("item").payload(new Item("i" + number))
                .header(MessageHeaders.SEQUENCE_ID, "s-1")
                .header(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number))
                .header(MessageHeaders.SEQUENCE_LAST, Boolean.toString(last));
        if (size != null) {
            builder.header(MessageHeaders.SEQUENCE_SIZE, Integer.toString(size));
        }
        return builder.build();
    }

    @Test
    void aPartNumberedBeyondTheKnownSizeIsRefusedNotReleasedWithTheGroup() throws Exception {
        aggregator.accept(part(2, true, 2)); // the last part arrives first: the size is 2
        Message beyond = part(5, false, null);
        AggregationException refused = assertThrows(AggregationException.class, () -> aggregator.accept(beyond));
        assertFalse(refused.isRetriable(), "a malformed part is dead-lettered at once");
        assertFalse(aggregator.group("s-1").orElseThrow().contains(beyond.id()));

        aggregator.accept(part(1, false, 2));
        assertEquals(1, released.size());
        assertEquals(2, released.get(0).group().size(), "parts 1 and 2 only");
    }

    @Test
    void aPartCarryingAnotherSizeThanTheGroupIsRefused() throws Exception {
        aggregator.accept(part(1, false, 3));
        assertThrows(AggregationException.class, () -> aggregator.accept(part(4, true, 4)));
        assertThrows(AggregationException.class, () -> aggregator.accept(part(2, false, 2)));
        assertEquals(1, aggregator.group("s-1").orElseThrow().size());
    }

    @Test
    void aSecondPartWithTheSameNumberUnderAnotherMessageIdIsRefusedNotReleasedWithTheGroup() throws Exception {
        aggregator.accept(part(1, false, 2));
        Message again = part(1, false, 2); // the same number under another id: a split retried outside a handler
        AggregationException refused = assertThrows(AggregationException.class, () -> aggregator.accept(again));
        assertFalse(refused.isRetriable(), "the bus dead-letters it at once, with the reason: nothing is lost");
        assertTrue(refused.getMessage().contains("number 1"), refused.getMessage());
        assertFalse(aggregator.group("s-1").orElseThrow().contains(again.id()));

        aggregator.accept(part(2, true, 2));
        assertEquals(1, released.size());
        assertEquals(2, released.get(0).group().size(), "one part per number");
    }

    @Test
    void aStrayPartThatArrivedBeforeAnyPartCarriedTheSizeIsDeadLetteredOnceTheSizeIsKnownNotReleased() throws Exception {
        Message stray = part(5, false, null); // nothing tells yet that the sequence has fewer parts
        aggregator.accept(stray);
        aggregator.accept(part(1, false, null));
        aggregator.accept(part(2, true, 2)); // the size: part 5 is a faulty producer's

        assertEquals(1, released.size());
        assertEquals(2, released.get(0).group().size(), "parts 1 and 2 only, as when part 5 arrives after the size");
        assertFalse(released.get(0).group().contains(stray.id()));
        List<Message> dead = transport.messages("item.DLT");
        assertEquals(1, dead.size(), "the stray part is dead-lettered, not lost");
        assertEquals("aggregation-out-of-sequence", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals("5", dead.get(0).headers().get(MessageHeaders.SEQUENCE_NUMBER));
        assertEquals("items", dead.get(0).headers().get(MessageHeaders.DLT_ORIGINAL_GROUP));
    }

    @Test
    void aPartWhoseSizeIsBelowItsNumberIsRefusedByTheAggregatorAndDeadLetteredWithNothingElseLost() throws Exception {
        aggregator.subscribe("items", "item");
        Message malformed = part(3, false, 2); // size 2, yet numbered 3: no split writes that
        for (Message message : List.of(part(1, false, 3), malformed, part(2, false, 3), part(3, true, 3))) {
            bus.publish(message).toCompletableFuture().join();
        }

        transport.drainAll();

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(1, dead.size(), "the malformed part only");
        Map<String, String> headers = dead.get(0).headers();
        assertEquals("handler-failed", headers.get(MessageHeaders.DLT_REASON));
        assertEquals("2", headers.get(MessageHeaders.SEQUENCE_SIZE), "the part as it came");
        assertEquals(AggregationException.class.getName(), headers.get(MessageHeaders.DLT_ERROR_CLASS),
                "the aggregator's own refusal, as for its other bad parts");
        assertEquals("1", headers.get(MessageHeaders.DLT_ATTEMPTS), "not retriable: dead-lettered at once");
        String reason = headers.get(MessageHeaders.DLT_ERROR_MESSAGE);
        assertTrue(reason.contains("group 's-1'") && reason.contains("sequence-number '3'")
                && reason.contains("sequence-size '2'"), reason);
        assertEquals(1, released.size(), "the group completes without it");
        assertEquals(3, released.get(0).group().size(), "nothing else in the group lost");
        assertFalse(released.get(0).group().contains(malformed.id()));
    }

    @Test
    void aPartWithMalformedSequenceHeadersIsRefusedNotRetriableQuotingItsValuesBounded() {
        Message huge = Message.builder("item").type("item").payload(new Item("x"))
                .header(MessageHeaders.SEQUENCE_ID, "s-1")
                .header(MessageHeaders.SEQUENCE_NUMBER, "9".repeat(1000))
                .header(MessageHeaders.SEQUENCE_SIZE, "2").build();

        AggregationException refused = assertThrows(AggregationException.class, () -> aggregator.accept(huge));

        assertFalse(refused.isRetriable());
        assertEquals("s-1", refused.key());
        assertTrue(refused.getMessage().contains("(1000 characters)"), refused.getMessage());
        assertTrue(refused.getMessage().length() < 600, refused.getMessage());
        assertTrue(aggregator.group("s-1").isEmpty(), "nothing stored for it");
    }
}
