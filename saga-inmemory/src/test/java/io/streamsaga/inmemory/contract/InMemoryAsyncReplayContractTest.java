package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.ReplayContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The replay contract on the in-memory log with a consumer thread per subscription. */
class InMemoryAsyncReplayContractTest extends ReplayContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(4).build();
    }
}
