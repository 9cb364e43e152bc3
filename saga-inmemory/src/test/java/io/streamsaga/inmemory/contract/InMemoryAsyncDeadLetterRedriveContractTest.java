package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.DeadLetterRedriveContractTest;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The dead-letter redrive contract on the in-memory log with a consumer thread per subscription. */
class InMemoryAsyncDeadLetterRedriveContractTest extends DeadLetterRedriveContractTest {
    @Override
    protected Transport createTransport() {
        return InMemoryTransport.builder().partitions(4).build();
    }
}
