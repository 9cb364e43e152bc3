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
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
        bus = EventBus.builder(refusingTopicB).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    }

    @AfterEach
    void close() {
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
}
