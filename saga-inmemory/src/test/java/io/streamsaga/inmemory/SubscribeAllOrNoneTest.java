package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.argThat;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * Components that subscribe to several topics in one call subscribe to all or none
 * ({@link Subscription#allOrNone}): a topic the transport could not subscribe to, after others were subscribed,
 * left those running. {@code EventAggregator.subscribe} returned no handle for them and did not keep them either
 * (its {@code close()} did not stop them, parts kept being aggregated); a {@link FlowTracker} kept them, so it could
 * not be started again ("already started").
 */
class SubscribeAllOrNoneTest {
    record Item(String orderId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
    private final AtomicBoolean refusingB = new AtomicBoolean(true);
    private final Transport refusingTopicB = mock(Transport.class, delegatesTo(transport));
    /** Topic c's member stopped without being closed, as a fenced Kafka member does. */
    private final AtomicBoolean stoppedOnItsOwn = new AtomicBoolean();
    private final AtomicBoolean closedStoppedMember = new AtomicBoolean();
    /** Subscribing to topic d waits for its assignment as on a broker. */
    private final CountDownLatch subscribingD = new CountDownLatch(1);
    private final CountDownLatch assignedD = new CountDownLatch(1);
    private final EventBus bus;

    SubscribeAllOrNoneTest() {
        doAnswer(call -> {
            if (refusingB.get()) {
                throw new IllegalStateException("topic b: not authorized");
            }
            return transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2), call.getArgument(3));
        }).when(refusingTopicB).subscribe(any(), argThat(pattern -> pattern != null && pattern.matches("b")), any(), any());
        doAnswer(call -> {
            Subscription member = transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    call.getArgument(3));
            return new Subscription() {
                @Override
                public String group() {
                    return member.group();
                }

                @Override
                public io.streamsaga.bus.TopicPattern pattern() {
                    return member.pattern();
                }

                @Override
                public boolean isActive() {
                    return !stoppedOnItsOwn.get() && member.isActive();
                }

                @Override
                public void close() {
                    closedStoppedMember.set(true);
                    member.close();
                }
            };
        }).when(refusingTopicB).subscribe(any(), argThat(pattern -> pattern != null && pattern.matches("c")), any(), any());
        doAnswer(call -> {
            subscribingD.countDown();
            assertTrue(assignedD.await(30, TimeUnit.SECONDS)); // a broker's group join and assignment
            Subscription made = transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    call.getArgument(3));
            transport.drainAll(); // the member's first poll, right after its assignment
            return made;
        }).when(refusingTopicB).subscribe(any(), argThat(pattern -> pattern != null && pattern.matches("d")), any(), any());
        bus = EventBus.builder(refusingTopicB).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    }

    @AfterEach
    void close() {
        assignedD.countDown();
        bus.close();
        transport.close();
    }

    @Test
    void anAggregatorSubscriptionRefusedForOneTopicLeavesNoneOfTheOthersRunning() {
        EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
                .correlateByField("orderId").completeOnSize(2).onRelease(aggregate -> { }).build();

        assertEquals("topic b: not authorized", assertThrows(IllegalStateException.class,
                () -> aggregator.subscribe("items", "a", "b")).getMessage());
        bus.publish("a", "o-1", new Item("o-1"));
        transport.drainAll();

        assertEquals(Optional.empty(), aggregator.group("o-1"), "not aggregated: nothing is subscribed");
        aggregator.close();
    }

    @Test
    void anAggregatorSubscriptionToANullTopicIsRefusedAsTheBusRefusesItNotWithABareNullPointerException() {
        // The bus refuses a null topic pattern with a ConfigurationException quoting it; the aggregator copied its
        // patterns with List.of, which threw a NullPointerException naming nothing.
        EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
                .correlateByField("orderId").completeOnSize(2).onRelease(aggregate -> { }).build();

        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> aggregator.subscribe("items", "a", null));
        assertEquals("topic pattern must be letters, digits, '.', '_', '-' and '*', but was null", refused.getMessage());
        bus.publish("a", "o-1", new Item("o-1"));
        transport.drainAll();
        assertEquals(Optional.empty(), aggregator.group("o-1"), "not aggregated: nothing is subscribed");
        aggregator.close();
    }

    @Test
    void aFlowTrackerWhoseStartFailedCanBeStartedAgain() {
        FlowDefinition flow = FlowDefinition.builder("order").event("a", "A", "B").event("b", "B")
                .succeedsOn("b").deadline(Duration.ofMinutes(1)).build();
        try (FlowTracker tracker = FlowTracker.builder(bus, flow).build()) {
            assertEquals("topic b: not authorized", assertThrows(IllegalStateException.class, tracker::start).getMessage());
            bus.publish("a", "o-1", new Item("o-1"));
            transport.drainAll();
            String first = transport.messages("a").get(0).header(MessageHeaders.CORRELATION_ID).orElseThrow();
            assertEquals(Optional.empty(), tracker.where(first), "nothing tracked by a start that failed");

            refusingB.set(false);
            tracker.start(); // was "flow tracker 'order' is already started", with topic a subscribed alone
            bus.publish("a", "o-2", new Item("o-2"));
            transport.drainAll();
            String second = transport.messages("a").get(1).header(MessageHeaders.CORRELATION_ID).orElseThrow();
            assertTrue(tracker.where(second).isPresent());
        }
    }

    @Test
    void aClosedAggregatorRefusesToSubscribeInsteadOfStartingASubscriptionNothingStops() {
        EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
                .correlateByField("orderId").completeOnSize(2).onRelease(aggregate -> { }).build();
        aggregator.close();

        assertEquals("aggregator 'items' is closed", assertThrows(io.streamsaga.ConfigurationException.class,
                () -> aggregator.subscribe("items", "a")).getMessage());
        bus.publish("a", "o-1", new Item("o-1"));
        transport.drainAll();
        assertEquals(Optional.empty(), aggregator.group("o-1"), "nothing subscribed");
    }

    @Test
    void aSubscriptionThatStoppedOnItsOwnIsStillClosedByTheAggregatorAfterALaterSubscribe() {
        // A later subscribe dropped every subscription no longer active from the aggregator's list, taking one that
        // stopped on its own (a fenced Kafka member: its thread ended, close() never called) for one the
        // application closed: the aggregator's close() then no longer closed it, so the transport kept it as an
        // open member of its group (its subscriptions(), the group listed as current) until the bus closed.
        EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
                .correlateByField("orderId").completeOnSize(2).onRelease(aggregate -> { }).build();
        aggregator.subscribe("items", "c");
        stoppedOnItsOwn.set(true);
        aggregator.subscribe("items", "a");

        aggregator.close();
        assertTrue(closedStoppedMember.get(), "the member that stopped on its own was closed");
    }

    @Test
    void aCloseDuringSubscribeReturnsOnlyOnceTheSubscriptionBeingMadeIsClosed() throws Exception {
        // close() during subscribe() returned at once and left the subscriptions being made for subscribe() to close
        // when the transport's subscribe returned (seconds on a broker): meanwhile they fed the closed aggregator,
        // which released groups after close() had returned.
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicBoolean releasedAfterClose = new AtomicBoolean();
        EventAggregator aggregator = EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items")
                .correlateByField("orderId").completeOnSize(1)
                .onRelease(aggregate -> releasedAfterClose.compareAndSet(false, closeReturned.get())).build();
        bus.publish("d", "o-1", new Item("o-1")).toCompletableFuture().join();
        CompletableFuture<?> subscribing = CompletableFuture.runAsync(() -> aggregator.subscribe("items",
                io.streamsaga.bus.SubscriptionOptions.defaults().withStart(io.streamsaga.bus.StartPosition.EARLIEST), "d"));
        assertTrue(subscribingD.await(30, TimeUnit.SECONDS));

        AtomicReference<Thread> closer = new AtomicReference<>();
        CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> {
            closer.set(Thread.currentThread());
            aggregator.close();
            closeReturned.set(true);
        });
        await().atMost(Duration.ofSeconds(30)).until(() -> closing.isDone()
                || (closer.get() != null && closer.get().getState() == Thread.State.BLOCKED));
        assignedD.countDown();
        closing.get(30, TimeUnit.SECONDS);
        try {
            subscribing.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException expected) {
            // refused as closed, or made and then closed by close(): either way nothing runs on
        }

        assertFalse(releasedAfterClose.get(), "a subscription being made as close() ran released a group after it returned");
        bus.publish("d", "o-2", new Item("o-2")).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(Optional.empty(), aggregator.group("o-2"), "nothing aggregated after close");
    }
}
