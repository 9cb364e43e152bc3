package io.streamsaga.kafka;

import io.streamsaga.contract.DeadLetterRedriveContractTest;
import io.streamsaga.spi.Transport;

import java.time.Duration;

/**
 * The dead-letter redrive contract on a real broker: dead letters the bus wrote to a {@code .DLT} topic sent back to
 * their topic as the original (id, key, payload, headers through Kafka record headers), stopping at the end offsets
 * taken at the start, committing a letter only once its original topic acknowledged it.
 */
class KafkaDeadLetterRedriveContractTest extends DeadLetterRedriveContractTest {
    @Override
    protected Transport createTransport() {
        return KafkaTransport.builder()
                .bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100))
                .build();
    }
}
