package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import org.junit.jupiter.api.Test;
import org.slf4j.MDC;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * With {@code logContext(true)} a bus over Kafka puts the delivered record's partition and offset in slf4j's MDC
 * ({@code streamsaga.partition}, {@code streamsaga.offset}) beside the message's keys, while it handles the record on
 * the consumer's thread (the tests' slf4j provider, MdcTestLoggingProvider in saga-core's test-jar, has a working
 * MDC). docs/architecture.md, "Log correlation".
 */
class KafkaLogContextTest {
    record Note(int n) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);

    @Test
    void aHandlerSeesThePartitionAndOffsetOfItsKafkaRecord() throws Exception {
        String topic = SharedKafkaBroker.unique("notes");
        SharedKafkaBroker.createTopics(2, topic);
        List<String> seen = new CopyOnWriteArrayList<>();
        try (KafkaTransport kafka = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .build();
             EventBus bus = EventBus.builder(kafka).types(TypeRegistry.builder().register("note", 1, Note.class).build())
                     .logContext(true).build()) {
            bus.subscribe(SharedKafkaBroker.unique("notes-group"), topic, Note.class,
                    SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (note, ctx) -> seen.add(
                            MDC.get("streamsaga.topic") + " " + MDC.get("streamsaga.partition") + "/"
                                    + MDC.get("streamsaga.offset") + " " + ctx.partition() + "/" + ctx.offset()));
            for (int n = 0; n < 6; n++) { // both partitions, records at offsets above 0
                bus.publish(topic, "k-" + n, new Note(n)).toCompletableFuture().join();
            }

            await().atMost(WAIT).until(() -> seen.size() == 6);

            for (String delivery : seen) {
                String[] parts = delivery.split(" ");
                assertEquals(topic, parts[0]);
                assertEquals(parts[2], parts[1], "the keys are the record's partition/offset: " + seen);
            }
            assertEquals(2, seen.stream().map(d -> d.split(" ")[1].split("/")[0]).distinct().count(), seen.toString());
        }
    }
}
