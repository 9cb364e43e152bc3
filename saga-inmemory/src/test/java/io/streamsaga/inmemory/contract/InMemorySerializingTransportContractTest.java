package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.TransportContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The transport contract on the in-memory log carrying JSON bytes, as a network transport does. */
class InMemorySerializingTransportContractTest extends TransportContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(3).serializePayloads(true).build();
    }
}
