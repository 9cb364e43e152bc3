package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.TransportContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The transport contract on the in-memory log with a consumer thread per subscription. */
class InMemoryAsyncTransportContractTest extends TransportContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(4).build();
    }
}
