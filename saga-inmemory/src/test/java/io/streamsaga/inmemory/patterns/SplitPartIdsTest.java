package io.streamsaga.inmemory.patterns;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SplitPart;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Inside a handler, a part's message id is derived from the handled message's id, the sequence id and the part's
 * number: the same split again gives the same ids, and two different parts never share one, whatever characters the
 * ids hold.
 */
class SplitPartIdsTest {
    /** An order of a batch: its items are split as one sequence, named by the handler after the batch. */
    record Order(String batch, int items) {
    }

    record Item(String batch, int n) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
            .types(TypeRegistry.builder().register("order", 1, Order.class).register("item", 1, Item.class).build()).build();
    private final List<Message> items = new CopyOnWriteArrayList<>();

    SplitPartIdsTest() {
        bus.subscribe("splitter", "orders", Order.class, (order, ctx) -> {
            List<SplitPart> parts = new java.util.ArrayList<>();
            for (int n = 1; n <= order.items(); n++) {
                parts.add(new SplitPart("items", order.batch(), new Item(order.batch(), n)));
            }
            EventSplitter.of(bus).split(order.batch(), parts).toCompletableFuture().join();
        });
        bus.subscribe("collector", "items", Message.class, (item, ctx) -> items.add(item));
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private void order(String messageId, String batch, int itemCount) {
        bus.publish(Message.builder("orders").id(messageId).key(batch).type("order").payload(new Order(batch, itemCount))
                .build());
    }

    @Test
    void partsOfTwoSplitsWhoseIdsRunTogetherTheSameWayStillGetIdsOfTheirOwn() {
        // joined with '/', both came to "shop/7/items/1" and "shop/7/items/2": two parts of different splits under one
        // id, so a consumer deduplicating by message id (IdempotentConsumer) took the second split's for the first's
        order("shop/7", "items", 2);
        order("shop", "7/items", 2);
        transport.drainAll();

        assertEquals(4, items.stream().map(Message::id).distinct().count(), items.toString());
        assertEquals(List.of("7/items", "7/items", "items", "items"),
                items.stream().map(m -> m.header(io.streamsaga.message.MessageHeaders.SEQUENCE_ID).orElseThrow()).sorted().toList());
    }

    @Test
    void theIdsOfPartsSplitFromIdsWithoutASlashOrABackslashAreTheIdsEarlierVersionsGaveThem() {
        // a split begun before an upgrade and retried after it publishes its parts under the same ids
        order("m-1", "batch-9", 2);
        transport.drainAll();

        assertEquals(List.of(derived("m-1/batch-9/1"), derived("m-1/batch-9/2")), items.stream().map(Message::id).toList());
    }

    private static String derived(String name) {
        return UUID.nameUUIDFromBytes(name.getBytes(StandardCharsets.UTF_8)).toString();
    }
}
