package io.streamsaga.inmemory.contract;

import io.streamsaga.contract.DeadLetterRedriveContractTest;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.spi.Transport;

/** The dead-letter redrive contract on the in-memory log in MANUAL mode: the test's polls drive delivery. */
class InMemoryManualDeadLetterRedriveContractTest extends DeadLetterRedriveContractTest {
    private InMemoryTransport transport;

    @Override
    protected Transport createTransport() {
        transport = InMemoryTransport.builder().partitions(4).deliveryMode(DeliveryMode.MANUAL).build();
        return transport;
    }

    @Override
    protected void pump() {
        transport.drainAll();
    }
}
