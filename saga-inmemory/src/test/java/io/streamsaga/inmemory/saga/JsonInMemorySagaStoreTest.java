package io.streamsaga.inmemory.saga;

import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaStoreContractTest;

/** The contract again, with the saga data kept as JSON like a durable store keeps it. */
class JsonInMemorySagaStoreTest extends SagaStoreContractTest {
    @Override
    protected SagaStore createStore() {
        return InMemorySagaStore.serializingJson(JsonEventCodec.defaultMapper());
    }
}
