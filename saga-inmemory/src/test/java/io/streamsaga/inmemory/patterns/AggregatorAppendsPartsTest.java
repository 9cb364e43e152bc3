package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.mockito.Mockito;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md (aggregator, limits): adding a part to a group costs the store that part, not the group. The
 * aggregator saved each arriving part with the whole group, which the in-memory store checked part by part (and a
 * durable store wrote whole): a group of n parts cost O(n) per part, O(n²) in all. It now appends the part
 * ({@link AggregationStore#append}), which the in-memory store checks alone. Counted here: how often the store reads
 * the headers of a part that was already stored.
 */
class AggregatorAppendsPartsTest {
    record Item(String n) {
    }

    private static final int PARTS = 64;

    /** Hands out the stored parts as spies that count how often the store reads their headers. */
    static final class CountingStore implements AggregationStore {
        private final AggregationStore delegate = new InMemoryAggregationStore();
        private final AtomicInteger storedPartsRead = new AtomicInteger();
        private final AtomicInteger appends = new AtomicInteger();
        private boolean inStore;

        @Override
        public Optional<AggregationGroup> find(String aggregator, String key) {
            return delegate.find(aggregator, key).map(this::counted);
        }

        private AggregationGroup counted(AggregationGroup group) {
            List<AggregatedPart> parts = new ArrayList<>();
            for (AggregatedPart part : group.parts()) {
                parts.add(Mockito.mockingDetails(part).isSpy() ? part : counted(part));
            }
            return new AggregationGroup(group.aggregator(), group.key(), group.version(), group.state(), parts,
                    group.createdAt(), group.deadline());
        }

        private AggregatedPart counted(AggregatedPart part) {
            AggregatedPart spy = Mockito.spy(part);
            Mockito.doAnswer(invocation -> {
                if (inStore) {
                    storedPartsRead.incrementAndGet();
                }
                return invocation.callRealMethod();
            }).when(spy).headers();
            return spy;
        }

        @Override
        public boolean save(AggregationGroup group) {
            inStore = true;
            try {
                return delegate.save(group);
            } finally {
                inStore = false;
            }
        }

        @Override
        public boolean append(AggregationGroup group) {
            appends.incrementAndGet();
            inStore = true;
            try {
                return delegate.append(group);
            } finally {
                inStore = false;
            }
        }

        @Override
        public boolean delete(String aggregator, String key, long version) {
            return delegate.delete(aggregator, key, version);
        }

        @Override
        public List<AggregationGroup> withDeadlines(String aggregator) {
            return delegate.withDeadlines(aggregator);
        }
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final CountingStore store = new CountingStore();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void eachPartIsAppendedSoTheStoreDoesNotGoOverTheGroupsStoredPartsAgainForEachPart() throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeWhen(group -> false).onRelease(aggregate -> { }).build();

        for (int i = 1; i <= PARTS; i++) {
            aggregator.accept(Message.builder("item").type("item").payload(new Item("i" + i))
                    .header("x-item", Integer.toString(i)).build());
        }

        assertEquals(PARTS, store.find("items", "g").orElseThrow().size());
        assertEquals(PARTS, store.appends.get(), "each part appended");
        assertEquals(0, store.storedPartsRead.get(),
                "O(1) per part: the store checks the appended part only, not every stored part again");
        aggregator.close();
    }
}
