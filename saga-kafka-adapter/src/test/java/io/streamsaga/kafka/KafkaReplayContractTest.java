package io.streamsaga.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.contract.ReplayContractTest;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.message.Message;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void aReplayGroupAnotherInstanceCommittedOnSinceTheLastListingOfGroupsIsNotTakenForUnused() throws Exception {
        // consumerGroups reuses its listing of the broker's groups (here for an hour): a replay group another
        // instance had just started was taken for unused, and this replay joined it, sharing its partitions
        // and resuming at its offsets instead of reading the topic from the beginning.
        String topic = SharedKafkaBroker.unique("replayed");
        String group = SharedKafkaBroker.unique("rebuild");
        String topicGroup = Reprocessor.groupFor(group, topic);
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .consumerGroupsMaxAge(Duration.ofHours(1)).build();
             KafkaTransport otherInstance = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                     .build();
             EventBus bus = EventBus.builder(here).build()) {
            here.send(Message.builder(topic).key("k").type("t").payload("{}".getBytes(StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            assertTrue(Reprocessor.isUnused(here, group, List.of(topic)), "nobody read the topic yet");

            try (Subscription elsewhere = otherInstance.subscribe(topicGroup, TopicPattern.of(topic), StartPosition.EARLIEST,
                    record -> { })) {
                await().atMost(Duration.ofSeconds(30)).until(() -> !otherInstance.committedOffsets(topicGroup, topic).isEmpty());
            }

            assertFalse(Reprocessor.isUnused(here, group, List.of(topic)));
            Reprocessor reprocessor = Reprocessor.builder(bus).on(topic, JsonNode.class, (event, ctx) -> { }).build();
            assertThrows(ConfigurationException.class, () -> reprocessor.start(group));
        }
    }
}
