package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.aggregator.spi.AggregationStoreContractTest;

class InMemoryAggregationStoreTest extends AggregationStoreContractTest {
    @Override
    protected AggregationStore createStore() {
        return new InMemoryAggregationStore();
    }
}
