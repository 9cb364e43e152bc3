package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.DeadLetterRedriveContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The dead-letter redrive contract on the in-memory log carrying JSON bytes, as a broker would. */
class InMemorySerializingDeadLetterRedriveContractTest extends DeadLetterRedriveContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(3).serializePayloads(true).build();
    }
}
