package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A part an aggregator dead-letters on timeout gets an id derived from the part's id and the aggregator's name, so
 * the same part dead-lettered again gets the same id, and two different dead letters never share one, whatever
 * characters the ids and names hold.
 */
class AggregatorDeadLetterIdsTest {
    record Item(String orderId, int n) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** An aggregator named {@code name} over topic {@code item}, dead-lettering a group that times out. */
    private void aggregator(String name) {
        EventAggregator.builder(bus, new InMemoryAggregationStore()).name(name).correlateByField("orderId")
                .completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER)
                .onRelease(aggregate -> { })
                .build().subscribe(name + "-group", "item");
    }

    private void item(String id, String orderId) {
        bus.publish(Message.builder("item").id(id).key(orderId).type("item").payload(new Item(orderId, 1)).build());
    }

    @Test
    void partsDeadLetteredByDifferentAggregatorsWhoseIdsRunTogetherTheSameWayGetIdsOfTheirOwn() {
        // joined with '/', part a/b given up by aggregator c and part a given up by aggregator b/c both came to "a/b/c"
        aggregator("c");
        aggregator("b/c");
        item("a/b", "o-1");
        item("a", "o-2");
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5));

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(4, dead.size(), "each aggregator gives up both parts: " + dead);
        assertEquals(4, dead.stream().map(Message::id).distinct().count(), dead.toString());
    }

    @Test
    void theIdOfAPartDeadLetteredWithoutASlashOrABackslashInItsIdOrItsAggregatorsNameIsTheIdEarlierVersionsGaveIt() {
        aggregator("items");
        item("m-1", "o-1");
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5));

        Message dead = transport.messages("item.DLT").get(0);
        assertEquals("items", dead.headers().get(MessageHeaders.DLT_ORIGINAL_GROUP));
        assertEquals(UUID.nameUUIDFromBytes("m-1/items".getBytes(StandardCharsets.UTF_8)).toString(), dead.id());
    }
}
