package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/patterns.md (aggregator): building an aggregator re-arms every stored deadline of its name. An aggregator
 * rebuilt without a timeout (the timeout was removed from its configuration) still honours the deadlines its
 * groups were stored with, and a timeout outcome that fails runs again rather than failing with
 * {@code now.plus(null)} and leaving the group stuck in TIMING_OUT.
 */
class AggregatorRebuiltWithoutTimeoutTest {
    record Item(String orderId, int n) {
    }

    @Test
    void aStoredDeadlineMetByAnAggregatorWithoutATimeoutStillTimesOutAndRetriesAFailedOutcome() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicBoolean dltDown = new AtomicBoolean(true);
        MessageInterceptor outage = new MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, EventCodec codec) {
                if (dltDown.get() && message.topic().endsWith(".DLT")) {
                    throw new IllegalStateException("broker unavailable");
                }
                return message;
            }
        };
        EventBus bus = EventBus.builder(transport).scheduler(scheduler).interceptor(outage)
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        EventAggregator before = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER)
                .onRelease(aggregate -> { })
                .build();
        before.subscribe("aggregator", "item");
        bus.publish("item", "o-1", new Item("o-1", 1));
        transport.drainAll();
        before.close();

        EventAggregator after = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(3) // the timeout was removed from the configuration
                .onRelease(aggregate -> { })
                .build();
        scheduler.advance(Duration.ofMinutes(5)); // the stored deadline: the dead-letter publish fails
        assertEquals(0, transport.messages("item.DLT").size());
        dltDown.set(false);
        scheduler.advance(Duration.ofHours(3));

        assertEquals(1, transport.messages("item.DLT").size(), "the timed-out part must reach the DLT, not stay stuck");
        after.close();
    }

    @Test
    void aFailedOutcomeOfAGroupMetLongAfterItsDeadlineRunsAgainWithinTheKeepClosedTimeNotAfterTheGroupsAge() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicBoolean dltDown = new AtomicBoolean(true);
        MessageInterceptor outage = new MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, EventCodec codec) {
                if (dltDown.get() && message.topic().endsWith(".DLT")) {
                    throw new IllegalStateException("broker unavailable");
                }
                return message;
            }
        };
        EventBus bus = EventBus.builder(transport).scheduler(scheduler).interceptor(outage)
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        EventAggregator before = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER)
                .onRelease(aggregate -> { })
                .build();
        before.subscribe("aggregator", "item");
        bus.publish("item", "o-1", new Item("o-1", 1));
        transport.drainAll();
        before.close();
        scheduler.advance(Duration.ofDays(7)); // nothing ran over the week: the stored deadline passed long ago

        EventAggregator after = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(3).keepClosed(Duration.ofHours(1)) // the timeout was removed from the configuration
                .onRelease(aggregate -> { })
                .build();
        scheduler.advance(Duration.ZERO); // the passed deadline fires at once: the dead-letter publish fails
        assertEquals(0, transport.messages("item.DLT").size());
        dltDown.set(false);
        scheduler.advance(Duration.ofHours(1));

        assertEquals(1, transport.messages("item.DLT").size(),
                "a transient failure must not postpone the outcome by the group's age (a week)");
        after.close();
    }
}
