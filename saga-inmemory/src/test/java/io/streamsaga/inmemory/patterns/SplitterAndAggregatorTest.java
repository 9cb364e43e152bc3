package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SequenceInfo;
import io.streamsaga.splitter.SplitPart;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SplitterAndAggregatorTest {
    record ItemCreated(String orderId, String itemId, int quantity) {
    }

    record SummaryCreated(String orderId, int itemCount) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder()
                    .register("order-item-created", 1, ItemCreated.class)
                    .register("order-summary-created", 1, SummaryCreated.class).build())
            .scheduler(scheduler).build();
    private final InMemoryAggregationStore store = new InMemoryAggregationStore();
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private static List<SplitPart> order(String orderId, int items) {
        List<SplitPart> parts = new ArrayList<>();
        for (int i = 1; i <= items; i++) {
            parts.add(new SplitPart("order-item-created", orderId, new ItemCreated(orderId, "i" + i, i)));
        }
        parts.add(new SplitPart("order-summary-created", orderId, new SummaryCreated(orderId, items)));
        return parts;
    }

    private EventAggregator.Builder aggregator() {
        return EventAggregator.builder(bus, store).name("order-items").onRelease(released::add);
    }

    private List<Message> all(String... topics) {
        List<Message> messages = new ArrayList<>();
        for (String topic : topics) {
            messages.addAll(transport.messages(topic));
        }
        return messages;
    }

    @Test
    void splitPartsOfKnownSizeAllCarrySequenceHeaders() {
        EventSplitter.of(bus).split("o-1", order("o-1", 2)).toCompletableFuture().join();
        List<Message> parts = all("order-item-created", "order-summary-created");
        assertEquals(3, parts.size());
        for (Message part : parts) {
            SequenceInfo info = SequenceInfo.of(part).orElseThrow();
            assertEquals("o-1", info.sequenceId());
            assertEquals(3, info.size().orElseThrow());
            assertEquals(info.number() == 3, info.last());
            assertEquals("o-1", part.correlationId().orElseThrow());
        }
        assertEquals("order-summary-created", parts.get(2).topic());
    }

    @Test
    void streamedSplitCarriesTheSizeOnlyOnTheMarkedLastPart() {
        EventSplitter.of(bus).split("o-1", order("o-1", 3).iterator()).toCompletableFuture().join();
        List<SequenceInfo> infos = all("order-item-created", "order-summary-created").stream()
                .map(m -> SequenceInfo.of(m).orElseThrow()).toList();
        assertEquals(4, infos.size());
        for (SequenceInfo info : infos.subList(0, 3)) {
            assertFalse(info.last());
            assertTrue(info.size().isEmpty());
        }
        assertTrue(infos.get(3).last());
        assertEquals(4, infos.get(3).size().orElseThrow());
    }

    @Test
    void emptySplitIsRefusedSoNoAggregatorWaitsForSizeZero() {
        CompletionException error = assertThrows(CompletionException.class,
                () -> EventSplitter.of(bus).split("o-1", List.of()).toCompletableFuture().join());
        assertInstanceOf(ConfigurationException.class, error.getCause());
        EventSplitter.Sequence sequence = EventSplitter.of(bus).open("o-2");
        sequence.emitLast(new SplitPart("order-summary-created", "o-2", new SummaryCreated("o-2", 0)));
        assertThrows(ConfigurationException.class,
                () -> sequence.emit(new SplitPart("order-summary-created", "o-2", new SummaryCreated("o-2", 0))));
    }

    @Test
    void aSplitWithANullPartFailsTypedBeforePublishingAnyPart() {
        List<SplitPart> parts = new ArrayList<>(order("o-1", 2));
        parts.set(1, null);
        CompletionException error = assertThrows(CompletionException.class,
                () -> EventSplitter.of(bus).split("o-1", parts).toCompletableFuture().join());
        assertInstanceOf(ConfigurationException.class, error.getCause());
        assertTrue(all("order-item-created", "order-summary-created").isEmpty(), "no part of the sequence is published");

        CompletionException streamed = assertThrows(CompletionException.class,
                () -> EventSplitter.of(bus).split("o-2", parts.iterator()).toCompletableFuture().join());
        assertInstanceOf(ConfigurationException.class, streamed.getCause());
    }

    record Unregistered(String orderId) {
    }

    @Test
    void aSplitWithAPartOfAnUnregisteredTypeFailsBeforePublishingAnyPart() {
        List<SplitPart> parts = new ArrayList<>(order("o-1", 1));
        parts.add(new SplitPart("order-summary-created", "o-1", new Unregistered("o-1")));
        CompletionException error = assertThrows(CompletionException.class,
                () -> EventSplitter.of(bus).split("o-1", parts).toCompletableFuture().join());
        assertInstanceOf(io.streamsaga.StreamSagaException.class, error.getCause());
        assertTrue(all("order-item-created", "order-summary-created").isEmpty(), "no part of the sequence is published");
    }

    record OrderCreated(String orderId, int items) {
    }

    @Test
    void aSplittingHandlerThatFailsAfterSomePartsAndIsRetriedDoesNotMakeTheAggregatorReleaseDuplicates() {
        EventBus splittingBus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("order-item-created", 1, ItemCreated.class)
                        .register("order-summary-created", 1, SummaryCreated.class).build())
                .retryPolicy(io.streamsaga.retry.RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .scheduler(scheduler).build();
        EventAggregator.builder(splittingBus, store).name("order-items").onRelease(released::add)
                .completeOnSequenceEnd().build()
                .subscribe("aggregator", "order-item-created", "order-summary-created");
        AtomicInteger attempts = new AtomicInteger();
        splittingBus.subscribe("splitter", "order-created", OrderCreated.class, (order, ctx) -> {
            EventSplitter.Sequence sequence = EventSplitter.of(splittingBus).open(order.orderId());
            List<SplitPart> parts = order(order.orderId(), order.items());
            for (int i = 0; i < parts.size() - 1; i++) {
                sequence.emit(parts.get(i));
                if (i == 1 && attempts.incrementAndGet() == 1) {
                    throw new IllegalStateException("crashed after two parts");
                }
            }
            sequence.emitLast(parts.get(parts.size() - 1));
        });
        splittingBus.publish("order-created", "o-1", new OrderCreated("o-1", 3));
        transport.drainAll();

        assertEquals(2, attempts.get());
        assertEquals(1, released.size());
        assertEquals(4, released.get(0).group().size(), "three items and the summary, each once");
        assertEquals(List.of("i1", "i2", "i3"),
                released.get(0).events(ItemCreated.class).stream().map(ItemCreated::itemId).sorted().toList());
        splittingBus.close();
    }

    @Test
    void aSplittingHandlerThatFailsAfterItsLastPartAndIsRetriedDoesNotMakeTheAggregatorReleaseTheGroupAgain() {
        EventBus splittingBus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("order-item-created", 1, ItemCreated.class)
                        .register("order-summary-created", 1, SummaryCreated.class).build())
                .retryPolicy(io.streamsaga.retry.RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .scheduler(scheduler).build();
        EventAggregator.builder(splittingBus, store).name("order-items").onRelease(released::add)
                .completeOnSequenceEnd().build()
                .subscribe("aggregator", "order-item-created", "order-summary-created");
        AtomicInteger attempts = new AtomicInteger();
        splittingBus.subscribe("splitter", "order-created", OrderCreated.class, (order, ctx) -> {
            EventSplitter.of(splittingBus).split(order.orderId(), order(order.orderId(), order.items()));
            if (attempts.incrementAndGet() == 1) {
                throw new IllegalStateException("failed after the split"); // retried: every part is published again
            }
        });
        splittingBus.publish("order-created", "o-1", new OrderCreated("o-1", 3));
        transport.drainAll();

        assertEquals(2, attempts.get());
        assertEquals(8, all("order-item-created", "order-summary-created").size(), "each part published twice, same ids");
        assertEquals(1, released.size(), "the aggregator takes each part once: the group is released once");
        splittingBus.close();
    }

    @Test
    void aggregatorCompletesFromSplitPartsOfUnknownSize() {
        aggregator().completeOnSequenceEnd().build().subscribe("aggregator", "order-item-created", "order-summary-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 3).iterator());
        transport.drainAll();
        assertEquals(1, released.size());
        Aggregate aggregate = released.get(0);
        assertEquals("o-1", aggregate.key());
        assertFalse(aggregate.partial());
        assertEquals(3, aggregate.events(ItemCreated.class).size());
        assertEquals(3, aggregate.first(SummaryCreated.class).orElseThrow().itemCount());
        assertEquals(GroupState.COMPLETED, store.find("order-items", "o-1").orElseThrow().state());
    }

    @Test
    void lastPartArrivingFirstStillWaitsForTheOthers() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSequenceEnd().build();
        EventSplitter.of(bus).split("o-1", order("o-1", 2).iterator()).toCompletableFuture().join();
        List<Message> parts = all("order-item-created", "order-summary-created");
        aggregator.accept(parts.get(2));
        aggregator.accept(parts.get(0));
        assertTrue(released.isEmpty());
        aggregator.accept(parts.get(1));
        assertEquals(1, released.size());
    }

    private static Message part(String sequenceId, int number, boolean last, Integer size) {
        Message.Builder builder = Message.builder("order-item-created").type("order-item-created")
                .payload(new ItemCreated("o-1", "i" + number, 1))
                .header(MessageHeaders.SEQUENCE_ID, sequenceId)
                .header(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number))
                .header(MessageHeaders.SEQUENCE_LAST, Boolean.toString(last));
        if (size != null) {
            builder.header(MessageHeaders.SEQUENCE_SIZE, Integer.toString(size));
        }
        return builder.build();
    }

    @Test
    void aSequenceIsNotCompleteWhileANumberBeforeItsLastPartIsMissing() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSequenceEnd().build();
        aggregator.accept(part("s-1", 1, false, null));
        aggregator.accept(part("s-1", 7, false, null)); // a part numbered beyond the sequence (a faulty producer)
        aggregator.accept(part("s-1", 3, true, 3));
        assertTrue(released.isEmpty(), "part 2 of 3 is missing: the last part and every number before it are needed");
        aggregator.accept(part("s-1", 2, false, null));
        assertEquals(1, released.size());
    }

    @Test
    void redeliveredPartIsNotCountedTwice() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2).build();
        EventSplitter.of(bus).split("o-1", order("o-1", 1)).toCompletableFuture().join();
        Message item = transport.messages("order-item-created").get(0);
        aggregator.accept(item);
        aggregator.accept(item);
        assertTrue(released.isEmpty());
        assertEquals(1, aggregator.group("o-1").orElseThrow().size());
    }

    @Test
    void timeoutReleasesThePartialGroupOnTheVirtualClock() {
        aggregator().completeOnSequenceEnd().timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build()
                .subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 2));
        transport.drainAll(); // the summary topic has no subscriber here: the group stays incomplete
        scheduler.advance(Duration.ofMinutes(4));
        assertTrue(released.isEmpty());
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(1, released.size());
        assertTrue(released.get(0).partial());
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("order-items", "o-1").orElseThrow().state());
    }

    @Test
    void timeoutDeadLettersThePartsWhenSoConfigured() {
        aggregator().completeOnSequenceEnd().timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).build()
                .subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 2));
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5));
        assertTrue(released.isEmpty());
        List<Message> dead = transport.messages("order-item-created.DLT");
        assertEquals(2, dead.size());
        assertEquals("aggregation-timeout", dead.get(0).header(MessageHeaders.DLT_REASON).orElseThrow());
        assertEquals("o-1", dead.get(0).header(MessageHeaders.SEQUENCE_ID).orElseThrow());
    }

    @Test
    void aTimedOutPartIsDeadLetteredWithItsOriginalKey() {
        aggregator().completeOnSequenceEnd().timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).build()
                .subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("s-1", order("o-1", 2));
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5));
        List<Message> dead = transport.messages("order-item-created.DLT");
        assertEquals(2, dead.size());
        for (Message letter : dead) {
            assertEquals("o-1", letter.key(), "a dead letter keeps the original key (docs/kafka.md)");
        }
    }

    @Test
    void timeoutIsRearmedByANewAggregatorOverTheSameStore() {
        EventAggregator before = aggregator().completeOnSequenceEnd()
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        before.subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 2));
        transport.drainAll();
        before.close(); // the process stops: its timers are gone, the store keeps the deadline
        scheduler.advance(Duration.ofMinutes(10));
        assertTrue(released.isEmpty());

        aggregator().completeOnSequenceEnd().timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        scheduler.runDueTasks(); // the deadline passed while it was down: it fires at once
        assertEquals(1, released.size());
        assertTrue(released.get(0).partial());
    }

    @Test
    void latePartForACompletedGroupIsDeadLetteredNotStartedAnew() {
        aggregator().completeOnSize(2).build().subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 3));
        transport.drainAll();
        assertEquals(1, released.size());
        List<Message> dead = transport.messages("order-item-created.DLT");
        assertEquals(1, dead.size());
        assertEquals(AggregationException.class.getName(), dead.get(0).header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("1", dead.get(0).header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
        assertEquals(2, store.find("order-items", "o-1").orElseThrow().size());
    }

    @Test
    void completedGroupIsForgottenAfterKeepClosed() {
        aggregator().completeOnSize(1).keepClosed(Duration.ofMinutes(30)).build().subscribe("aggregator", "order-item-created");
        EventSplitter.of(bus).split("o-1", order("o-1", 1));
        transport.drainAll();
        assertTrue(store.find("order-items", "o-1").isPresent());
        scheduler.advance(Duration.ofMinutes(30));
        assertTrue(store.find("order-items", "o-1").isEmpty());
    }

    @Test
    void failedReleaseReopensTheGroupAndTheRetryReleasesIt() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("flaky").completeOnSize(1)
                .onRelease(aggregate -> {
                    if (calls.incrementAndGet() == 1) {
                        throw new IllegalStateException("broker down");
                    }
                    released.add(aggregate);
                }).build();
        EventSplitter.of(bus).split("o-1", order("o-1", 1)).toCompletableFuture().join();
        Message item = transport.messages("order-item-created").get(0);
        assertThrows(IllegalStateException.class, () -> aggregator.accept(item));
        assertEquals(GroupState.OPEN, aggregator.group("o-1").orElseThrow().state());
        aggregator.accept(item); // the bus's retry
        assertEquals(1, released.size());
    }

    @Test
    void concurrentInstancesSharingAStoreLoseNoPart() throws Exception {
        int parts = 40;
        EventAggregator first = aggregator().completeOnSize(parts).build();
        EventAggregator second = aggregator().completeOnSize(parts).build();
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < parts; i++) {
            messages.add(Message.builder("order-item-created").type("order-item-created")
                    .header(MessageHeaders.CORRELATION_ID, "o-1").payload(new ItemCreated("o-1", "i" + i, 1)).build());
        }
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                EventAggregator instance = t == 0 ? first : second;
                List<Message> share = messages.subList(t * parts / 2, (t + 1) * parts / 2);
                done.add(pool.submit(() -> {
                    start.await();
                    for (Message m : share) {
                        instance.accept(m);
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : done) {
                f.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(1, released.size());
        assertEquals(parts, released.get(0).group().size());
    }

    @Test
    void aggregatorCompletesSplitPartsDeliveredByConsumerThreads() {
        InMemoryTransport async = InMemoryTransport.builder().partitions(4).build();
        try (EventBus asyncBus = EventBus.builder(async)
                .types(TypeRegistry.builder()
                        .register("order-item-created", 1, ItemCreated.class)
                        .register("order-summary-created", 1, SummaryCreated.class).build())
                .scheduler(scheduler).build()) {
            EventAggregator.builder(asyncBus, store).name("async-items").completeOnSequenceEnd().onRelease(released::add)
                    .build().subscribe("aggregator", "order-item-created", "order-summary-created");
            for (int order = 0; order < 20; order++) {
                EventSplitter.of(asyncBus).split("o-" + order, order("o-" + order, 1 + order % 4).iterator());
            }
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> released.size() == 20);
            for (Aggregate aggregate : released) {
                int items = Integer.parseInt(aggregate.key().substring(2)) % 4 + 1;
                assertEquals(items + 1, aggregate.group().size());
            }
        } finally {
            async.close();
        }
    }

    @Test
    void aggregatorThatCouldNeverCloseAGroupIsRefused() {
        ConfigurationException error = assertThrows(ConfigurationException.class, () -> aggregator().build());
        assertTrue(error.getMessage().contains("never close"), error.getMessage());
    }
}
