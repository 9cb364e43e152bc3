package io.streamsaga.kafka;

import io.streamsaga.contract.ReplayContractTest;
import io.streamsaga.spi.Transport;

import java.time.Duration;

/**
 * Kappa on Kafka: the replay contract (replay from the beginning into a new consumer group, progress from
 * the group's committed offsets against the end offsets, projection rebuild and swap) on a real broker.
 */
class KafkaReplayContractTest extends ReplayContractTest {
    @Override
    protected Transport createTransport() {
        return KafkaTransport.builder()
                .bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100))
                .build();
    }
}
