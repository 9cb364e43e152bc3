package io.streamsaga.inmemory.patterns;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.claimcheck.spi.PayloadStoreContractTest;

class InMemoryPayloadStoreTest extends PayloadStoreContractTest {
    @Override
    protected PayloadStore createStore() {
        return new InMemoryPayloadStore();
    }
}
