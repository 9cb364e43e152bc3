package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.aggregator.spi.AggregationStoreContractTest;

import java.util.List;
import java.util.Optional;

/**
 * The store contract on a store of an application's own written before {@link AggregationStore#append} and
 * {@link AggregationStore#delete(AggregationGroup)}: it implements only the other methods (its save telling a key's
 * groups apart by when each was opened, as the contract asks), and keeps the defaults. The aggregator deletes through
 * {@code delete(group)}, so its default must not delete a key's next group for the earlier one met again at its
 * version ({@code aWriterOfAnEarlierGroupOfTheKeyMeetingItsVersionAgainChangesNothingInTheNextGroup}).
 */
class AggregationStoreKeepingTheDefaultsTest extends AggregationStoreContractTest {
    @Override
    protected AggregationStore createStore() {
        AggregationStore delegate = new InMemoryAggregationStore();
        return new AggregationStore() {
            @Override
            public Optional<AggregationGroup> find(String aggregator, String key) {
                return delegate.find(aggregator, key);
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
        };
    }
}
