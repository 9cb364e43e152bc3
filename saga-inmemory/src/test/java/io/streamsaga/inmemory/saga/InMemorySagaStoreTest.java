package io.streamsaga.inmemory.saga;

import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaStoreContractTest;

class InMemorySagaStoreTest extends SagaStoreContractTest {
    @Override
    protected SagaStore createStore() {
        return new InMemorySagaStore();
    }
}
