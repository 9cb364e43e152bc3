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
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/patterns.md (aggregator): on timeout with DEAD_LETTER the parts go to topic.DLT; EventAggregator's
 * onDeadline: "the deadline stays in the store and is re-armed". A dead-letter publish that fails once must
 * not lose the parts for good.
 */
class AggregatorTimeoutDeadLetterFailureTest {
    record Item(String orderId, int n) {
    }

    @Test
    void aTimedOutGroupWhoseDeadLetterPublishFailsIsDeadLetteredLaterNotLost() {
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
        EventAggregator.builder(bus, new InMemoryAggregationStore()).name("items").correlateByField("orderId")
                .completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER)
                .onRelease(aggregate -> { })
                .build().subscribe("aggregator", "item");
        bus.publish("item", "o-1", new Item("o-1", 1));
        transport.drainAll();

        scheduler.advance(Duration.ofMinutes(5)); // the deadline: the dead-letter publish fails
        assertEquals(0, transport.messages("item.DLT").size());
        dltDown.set(false);
        scheduler.advance(Duration.ofHours(3)); // well past the timeout and the tombstone's keepClosed (1 h)

        assertEquals(1, transport.messages("item.DLT").size(), "the timed-out part must reach the DLT, not vanish");
    }
}
