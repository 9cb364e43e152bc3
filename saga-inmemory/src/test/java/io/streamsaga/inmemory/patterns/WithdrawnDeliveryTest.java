package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The patterns keep what they record about a delivery (a key done, a group released) only once the transport says the
 * delivery stays handled ({@link Transport#afterDelivery}), as Kafka's exactly-once mode says once a poll batch's
 * transaction committed or aborted; here a transport holds the outcomes until the test settles them.
 */
class WithdrawnDeliveryTest {
    record Item(String orderId, int n) {
    }

    /** The in-memory transport, but the outcome of each delivery waits for {@link #settle}, as in a transaction. */
    static final class TransactionalTransport extends ForwardingTransport {
        private final List<Runnable[]> outcomes = new ArrayList<>();

        TransactionalTransport() {
            super(InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build());
        }

        /** Ends the "transaction" of the deliveries so far: commits it, or aborts it. */
        void settle(boolean committed) {
            List<Runnable[]> ended = List.copyOf(outcomes);
            outcomes.clear();
            ended.forEach(outcome -> outcome[committed ? 0 : 1].run());
        }

        @Override
        public void afterDelivery(Runnable kept, Runnable withdrawn) {
            outcomes.add(new Runnable[] {kept, withdrawn});
        }

        @Override
        public String name() {
            return "transactional-in-memory";
        }
    }

    private final TransactionalTransport transport = new TransactionalTransport();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private static Message item(String id, int n) {
        return Message.builder("item").id(id).key("o-1").type("item").payload(new Item("o-1", n)).build();
    }

    @Test
    void anIdempotentConsumerRunsAWithdrawnDeliveryAgainAndSkipsOneKeptAndADuplicateAwaitingItsOutcome() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        EventHandler<Message> handler = IdempotentConsumer.builder(bus, InMemoryDeduplicationStore.builder().build()).build()
                .wrap((message, ctx) -> runs.incrementAndGet());
        DeliveryContext delivery = new DeliveryContext(item("m-1", 1), "billing", 0, 0, 1);

        handler.handle(delivery.message(), delivery);
        handler.handle(delivery.message(), delivery); // the same id again in the same batch: shares its outcome
        assertEquals(1, runs.get());
        transport.settle(false); // the batch's transaction aborted: its deliveries come again
        handler.handle(delivery.message(), delivery);
        assertEquals(2, runs.get(), "a withdrawn delivery runs again");
        transport.settle(true);
        handler.handle(delivery.message(), delivery);
        transport.settle(true);
        assertEquals(2, runs.get(), "a kept delivery is done");
    }

    @Test
    void anAggregatorReopensAGroupWhoseReleaseWasWithdrawnAndItsPartReleasesItAgain() throws Exception {
        List<Integer> released = new ArrayList<>();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        try (EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).onRelease(aggregate -> released.add(aggregate.group().size())).build()) {
            Message first = item("m-1", 1);
            Message last = item("m-2", 2);
            aggregator.accept(first);
            aggregator.accept(last);
            assertEquals(List.of(2), released);
            transport.settle(false); // the release's outputs were aborted with the batch
            assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state());
            assertEquals(2, store.find("items", "o-1").orElseThrow().size());

            aggregator.accept(first); // the batch handled again: the group, complete, is released again
            aggregator.accept(last);
            transport.settle(true);
            assertEquals(List.of(2, 2), released);
            assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
            aggregator.accept(last); // kept: a duplicate from now on
            assertEquals(List.of(2, 2), released);
        }
    }
}
