package io.streamsaga.kafka;

import io.streamsaga.contract.DeadLetterRedriveContractTest;
import io.streamsaga.spi.Transport;

import java.time.Duration;

/**
 * The dead-letter redrive contract on a broker in exactly-once mode: the bus's dead letters are written in the
 * member's transactions (each followed by a commit marker the run's letters do not show), and the run's own sends and
 * commits are transactions over poll batches.
 */
class KafkaExactlyOnceDeadLetterRedriveContractTest extends DeadLetterRedriveContractTest {
    @Override
    protected Transport createTransport() {
        return KafkaTransport.builder()
                .bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(SharedKafkaBroker.unique("redrive"))
                .redeliveryBackoff(Duration.ofMillis(100))
                .build();
    }
}
