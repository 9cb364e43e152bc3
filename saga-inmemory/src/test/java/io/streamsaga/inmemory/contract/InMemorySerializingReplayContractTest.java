package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.ReplayContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The replay contract on the in-memory log carrying JSON bytes, as a broker would. */
class InMemorySerializingReplayContractTest extends ReplayContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(3).serializePayloads(true).build();
    }
}
