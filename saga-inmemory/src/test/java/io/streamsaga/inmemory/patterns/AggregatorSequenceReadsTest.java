package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
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
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.mockito.Mockito;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md (aggregator, limits): checking a part against its group's sequences and the completion rule
 * {@code completeOnSequenceEnd()} do not decode the group's stored parts again for each new part. Counted here:
 * how often the aggregator reads the sequence headers of a part it got back from the store. Reading all of a
 * group's parts for each part made a group of n parts cost O(n²) reads; the index kept between parts reads them
 * only when it rebuilds, so a group costs O(n) at most (none here: one instance, nothing evicted).
 */
class AggregatorSequenceReadsTest {
    record Item(String n) {
    }

    private static final int PARTS = 64;

    /** Hands out the stored parts as spies that count how often their sequence headers are read. */
    static final class CountingStore implements AggregationStore {
        private final AggregationStore delegate = new InMemoryAggregationStore();
        private final AtomicInteger sequenceReads = new AtomicInteger();

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
                sequenceReads.incrementAndGet();
                return invocation.callRealMethod();
            }).when(spy).sequence();
            return spy;
        }

        @Override
        public boolean save(AggregationGroup group) {
            return delegate.save(group);
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
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private static Message numbered(int number, Integer size) {
        Message.Builder builder = Message.builder("item").type("item").payload(new Item("s" + number))
                .header(MessageHeaders.SEQUENCE_ID, "s")
                .header(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number))
                .header(MessageHeaders.SEQUENCE_LAST, Boolean.toString(size != null && size == number));
        if (size != null) {
            builder.header(MessageHeaders.SEQUENCE_SIZE, Integer.toString(size));
        }
        return builder.build();
    }

    private static Message plain(int n) {
        return Message.builder("item").type("item").payload(new Item("plain" + n)).build();
    }

    @Test
    void aGroupMixingPartsWithAndWithoutSequenceHeadersIsNotIndexedAgainForEachNumberedPart() throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeWhen(group -> false).onRelease(released::add).build();

        for (int i = 1; i <= PARTS / 2; i++) {
            aggregator.accept(numbered(i, null));
            aggregator.accept(plain(i));
        }

        assertEquals(PARTS, store.find("items", "g").orElseThrow().size());
        assertTrue(store.sequenceReads.get() <= PARTS,
                "O(1) amortised per part, not a read of every stored part per numbered part: " + store.sequenceReads.get());
        aggregator.close();
    }

    @Test
    void completeOnSequenceEndDoesNotReadEveryPartOfTheGroupForEachPart() throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeOnSequenceEnd().onRelease(released::add).build();

        for (int number = 1; number < PARTS; number++) {
            aggregator.accept(numbered(number, null));
        }
        assertTrue(released.isEmpty());
        aggregator.accept(numbered(PARTS, PARTS));

        assertEquals(1, released.size());
        assertEquals(PARTS, released.get(0).group().size());
        assertTrue(store.sequenceReads.get() <= PARTS,
                "O(1) amortised per part, not a read of every stored part per part: " + store.sequenceReads.get());
        aggregator.close();
    }

    private static Message numbered(String sequence, int number) {
        return Message.builder("item").type("item").payload(new Item(sequence + number))
                .header(MessageHeaders.SEQUENCE_ID, sequence)
                .header(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number))
                .header(MessageHeaders.SEQUENCE_LAST, "false").build();
    }

    /** Parts of {@code groups} groups (correlated by their sequence id) taken in turn: each group is touched in turn. */
    private int readsWithGroupsOpenAtOnce(String name, int capacity, int groups) throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name(name).sequenceIndexCapacity(capacity)
                .completeWhen(group -> false).onRelease(released::add).build();
        for (int number = 1; number <= 8; number++) {
            for (int group = 0; group < groups; group++) {
                aggregator.accept(numbered("g" + group, number));
            }
        }
        aggregator.close();
        return store.sequenceReads.getAndSet(0);
    }

    @Test
    void theSequenceIndexKeepsAsManyGroupsAsItsCapacitySetsSoThatMoreGroupsOpenAtOnceAreNotIndexedAgainForEachPart()
            throws Exception {
        assertTrue(readsWithGroupsOpenAtOnce("items", 3, 4) > 4 * 8,
                "more groups open at once than indexed: each part reads its group's stored parts again");

        assertEquals(0, readsWithGroupsOpenAtOnce("others", 4, 4),
                "a capacity set to the groups open at once indexes each group once");
    }

    @Test
    void aSequenceIndexCapacityBelowZeroIsRefusedQuotingIt() {
        io.streamsaga.ConfigurationException refused = org.junit.jupiter.api.Assertions.assertThrows(
                io.streamsaga.ConfigurationException.class, () -> EventAggregator.builder(bus, store).name("items")
                        .sequenceIndexCapacity(-1).completeOnSequenceEnd().onRelease(released::add).build());
        assertEquals("sequenceIndexCapacity must be 0 or more, but was -1", refused.getMessage());
    }
}
