package io.streamsaga.kafka;

import io.streamsaga.bus.Subscription;
import io.streamsaga.contract.TransportContractTest;
import io.streamsaga.spi.Transport;

import java.time.Duration;

/**
 * The transport contract on a real Kafka broker (the module's one shared embedded broker), with one
 * transport shared by the class.
 */
class KafkaTransportContractTest extends TransportContractTest {

    @Override
    protected Transport createTransport() {
        return KafkaTransport.builder()
                .bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100))
                .build();
    }

    @Override
    protected boolean transportPerTest() {
        return false;
    }

    /**
     * {@code subscribe} already waits for the member's first assignment; this also waits for the other
     * members of the same group, whose partitions move when a member joins or leaves.
     */
    @Override
    protected void awaitReady(Subscription subscription) {
        KafkaTransport kafka = (KafkaTransport) transport();
        for (KafkaSubscription member : kafka.subscriptions()) {
            if (member.group().equals(subscription.group()) && member.pattern().equals(subscription.pattern())) {
                member.awaitAssignment(Duration.ofSeconds(30));
            }
        }
    }
}
