package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.bus.PublishException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SplitPart;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The splitter returns stages: a failure while splitting fails the stage (it does not escape the call), and a
 * sequence one of whose parts failed emits no more parts, so a handler that emits without joining each stage
 * fails (and the bus retries the message) instead of acknowledging a split with a part missing. Inside a handler a
 * part the bus fails fails the handling, joined or not; what the splitter refuses itself (an iterator's failure, a part
 * of an unregistered class) fails only the stage, which the handler joins.
 */
class SplitterFailureTest {
    record Item(String orderId, int n) {
    }

    record Order(String orderId) {
    }

    record Unregistered(String orderId) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final AtomicBoolean failSecondItem = new AtomicBoolean();
    /** Whether every publish of a second item is refused, not only the next one. */
    private final AtomicBoolean refuseSecondItem = new AtomicBoolean();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("order", 1, Order.class).register("item", 1, Item.class).build())
            .interceptor(new MessageInterceptor() {
                @Override
                public Message beforePublish(Message message, EventCodec codec) {
                    if (message.topic().equals("item") && "2".equals(message.headers().get(MessageHeaders.SEQUENCE_NUMBER))
                            && (failSecondItem.getAndSet(false) || refuseSecondItem.get())) {
                        throw new PublishException("item", "broker unavailable", null, true);
                    }
                    return message;
                }
            })
            .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
            .scheduler(scheduler).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private static SplitPart item(String orderId, int n) {
        return new SplitPart("item", orderId, new Item(orderId, n));
    }

    @Test
    void anIteratorThatThrowsFailsTheReturnedStageInsteadOfEscapingTheCall() {
        IllegalStateException cursorFailure = new IllegalStateException("cursor closed");
        Iterator<SplitPart> parts = new Iterator<>() {
            private int read;

            @Override
            public boolean hasNext() {
                return true;
            }

            @Override
            public SplitPart next() {
                if (++read > 2) {
                    throw cursorFailure;
                }
                return item("o-1", read);
            }
        };
        CompletionStage<?> split = assertDoesNotThrow(() -> EventSplitter.of(bus).split("o-1", parts));
        CompletionException error = assertThrows(CompletionException.class, () -> split.toCompletableFuture().join());
        assertSame(cursorFailure, error.getCause());

        Iterator<SplitPart> empty = new Iterator<>() {
            @Override
            public boolean hasNext() {
                throw new NoSuchElementException("no cursor");
            }

            @Override
            public SplitPart next() {
                throw new NoSuchElementException("no cursor");
            }
        };
        CompletionStage<?> none = assertDoesNotThrow(() -> EventSplitter.of(bus).split("o-2", empty));
        assertTrue(none.toCompletableFuture().isCompletedExceptionally());
    }

    @Test
    void refusalsQuoteTheSequenceIdBounded() {
        // The sequence id is often the source message's id: a 10,000-character one went whole into the refusals.
        String id = "s".repeat(10_000);
        java.util.List<String> refusals = new java.util.ArrayList<>();
        refusals.add(assertThrows(CompletionException.class, () -> EventSplitter.of(bus).split(id, java.util.List.of())
                .toCompletableFuture().join()).getCause().getMessage());
        EventSplitter.Sequence sequence = EventSplitter.of(bus).open(id);
        sequence.emit(new SplitPart("item", "o-1", new Unregistered("o-1")));
        refusals.add(assertThrows(PublishException.class, () -> sequence.emit(item("o-1", 2))).getMessage());
        for (String message : refusals) {
            assertTrue(message.length() < 600 && message.contains("'" + "s".repeat(64) + "...' (10000 characters)"), message);
        }
    }

    @Test
    void aSequenceWhosePartFailedEmitsNoMorePartsAndItsCompletionFails() {
        EventSplitter.Sequence sequence = EventSplitter.of(bus).open("o-1");
        assertTrue(sequence.emit(new SplitPart("item", "o-1", new Unregistered("o-1"))).toCompletableFuture()
                .isCompletedExceptionally());

        assertThrows(PublishException.class, () -> sequence.emit(item("o-1", 2)));
        assertThrows(PublishException.class, () -> sequence.emitLast(item("o-1", 3)));
        assertEquals(0, transport.messages("item").size(), "no part after the failed one is published");
        assertThrows(CompletionException.class, () -> sequence.completion().toCompletableFuture().join());
    }

    @Test
    void aHandlerThatDoesNotJoinItsPartsIsRetriedRatherThanAcknowledgeASplitWithAPartMissing() {
        List<Aggregate> released = new CopyOnWriteArrayList<>();
        EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items").completeOnSequenceEnd()
                .onRelease(released::add).build().subscribe("aggregator", "item");
        bus.subscribe("splitter", "order", Order.class, (order, ctx) -> {
            EventSplitter.Sequence sequence = EventSplitter.of(bus).open(order.orderId());
            sequence.emit(item(order.orderId(), 1));
            sequence.emit(item(order.orderId(), 2));
            sequence.emitLast(item(order.orderId(), 3)); // no stage joined
        });
        failSecondItem.set(true);
        bus.publish("order", "o-1", new Order("o-1"));
        transport.drainAll();

        assertEquals(1, released.size(), "the retried handler emits the missing part and the group completes");
        assertEquals(3, released.get(0).group().size());
        assertEquals(0, transport.messages("order.DLT").size());
    }

    /** An aggregator of the sequences on "item" whose releases go to the returned list. */
    private List<Aggregate> aggregated() {
        List<Aggregate> released = new CopyOnWriteArrayList<>();
        EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items").completeOnSequenceEnd()
                .onRelease(released::add).build().subscribe("aggregator", "item");
        return released;
    }

    @Test
    void aPartWhosePublishFailsFailsTheHandlingOfAHandlerThatDoesNotJoinAndIsDeadLetteredAfterItsRetries() {
        List<Aggregate> released = aggregated();
        bus.subscribe("splitter", "order", Order.class, (order, ctx) -> {
            EventSplitter.of(bus).split(order.orderId(), List.of(item(order.orderId(), 1), item(order.orderId(), 2),
                    item(order.orderId(), 3))); // no stage joined
        });
        refuseSecondItem.set(true);
        bus.publish("order", "o-1", new Order("o-1"));
        transport.drainAll();

        List<Message> dead = transport.messages("order.DLT");
        assertEquals(1, dead.size(), "the failed part's publish is the delivery's: retried, then dead-lettered");
        assertEquals("handler-failed", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals(List.of(), released, "no part after the failed one: the sequence has no last part");
    }

    /** Parts 1 and 2 of {@code orderId}, then a cursor failure while {@code failing} holds, else part 3, the last. */
    private static Iterator<SplitPart> cursor(String orderId, AtomicBoolean failing) {
        return new Iterator<>() {
            private int read;

            @Override
            public boolean hasNext() {
                return read < 3;
            }

            @Override
            public SplitPart next() {
                if (++read == 3 && failing.getAndSet(false)) {
                    throw new IllegalStateException("cursor closed (test)");
                }
                return item(orderId, read);
            }
        };
    }

    @Test
    void anIteratorThatThrowsMidwayInAHandlerThatDoesNotJoinLeavesTheSequenceWithoutItsLastPartAndTheMessageAcknowledged() {
        List<Aggregate> released = aggregated();
        AtomicBoolean failing = new AtomicBoolean(true);
        List<Throwable> splits = new CopyOnWriteArrayList<>();
        bus.subscribe("splitter", "order", Order.class, (order, ctx) -> EventSplitter.of(bus)
                .split(order.orderId(), cursor(order.orderId(), failing))
                .whenComplete((positions, error) -> splits.add(error))); // not joined
        bus.publish("order", "o-1", new Order("o-1"));
        transport.drainAll();

        assertEquals(1, splits.size(), "one attempt: nothing failed the handling");
        assertEquals("cursor closed (test)", splits.get(0).getMessage());
        assertEquals(2, transport.messages("item").size(), "the parts read before the failure");
        assertEquals(List.of(), released, "no last part: the group waits");
        assertEquals(0, transport.messages("order.DLT").size(), "acknowledged: nothing says the split is incomplete");
    }

    @Test
    void anIteratorThatThrowsMidwayInAHandlerThatJoinsFailsTheHandlingAndTheRetryCompletesTheSequence() {
        List<Aggregate> released = aggregated();
        AtomicBoolean failing = new AtomicBoolean(true);
        bus.subscribe("splitter", "order", Order.class, (order, ctx) -> EventSplitter.of(bus)
                .split(order.orderId(), cursor(order.orderId(), failing)).toCompletableFuture().join());
        bus.publish("order", "o-1", new Order("o-1"));
        transport.drainAll();

        assertEquals(1, released.size(), "retried: the parts again under their ids, then the last");
        assertEquals(3, released.get(0).group().size());
        assertEquals(0, transport.messages("order.DLT").size());
    }

    /**
     * How many attempts a handler splitting {@code o-1} into an item and a part of an unregistered class made, by
     * {@code split(id, List)} or {@code split(id, Iterator)}, joining the split's stage or not, and how many dead letters
     * it left.
     */
    private List<Integer> attemptsAndDeadLettersOfASplitWithAnUnregisteredPart(boolean iterator, boolean join) {
        List<Boolean> attempts = new CopyOnWriteArrayList<>();
        bus.subscribe("splitter", "order", Order.class, (order, ctx) -> {
            attempts.add(true);
            List<SplitPart> parts = List.of(item(order.orderId(), 1),
                    new SplitPart("item", order.orderId(), new Unregistered(order.orderId())));
            CompletionStage<?> split = iterator ? EventSplitter.of(bus).split(order.orderId(), parts.iterator())
                    : EventSplitter.of(bus).split(order.orderId(), parts);
            if (join) {
                split.toCompletableFuture().join();
            }
        });
        bus.publish("order", "o-1", new Order("o-1"));
        transport.drainAll();
        return List.of(attempts.size(), transport.messages("order.DLT").size());
    }

    @Test
    void aListSplitWithAPartOfAnUnregisteredClassPublishesNothingAndOnlyFailsItsStageSoAHandlerThatDoesNotJoinIsAcknowledged() {
        assertEquals(List.of(1, 0), attemptsAndDeadLettersOfASplitWithAnUnregisteredPart(false, false),
                "refused by the splitter before the bus: the stage failed, the message acknowledged");
        assertEquals(0, transport.messages("item").size(), "checked before any part is published");
    }

    @Test
    void anIteratorSplitWithAPartOfAnUnregisteredClassOnlyFailsItsStageSoAHandlerThatDoesNotJoinIsAcknowledged() {
        assertEquals(List.of(1, 0), attemptsAndDeadLettersOfASplitWithAnUnregisteredPart(true, false),
                "refused by the splitter before the bus: the stage failed, the message acknowledged");
        assertEquals(1, transport.messages("item").size(), "the part before it published");
    }

    @Test
    void aSplitWithAPartOfAnUnregisteredClassInAHandlerThatJoinsIsDeadLetteredAtOnceAsNotRetriable() {
        assertEquals(List.of(1, 1), attemptsAndDeadLettersOfASplitWithAnUnregisteredPart(true, true));
    }
}
