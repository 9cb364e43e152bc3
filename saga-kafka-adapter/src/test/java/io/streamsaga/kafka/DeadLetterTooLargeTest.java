package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static io.streamsaga.kafka.ExactlyOnceTest.header;
import static io.streamsaga.kafka.ExactlyOnceTest.readAll;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * "Nothing is lost, one bad message never stops a consumer": a record just under the producer's
 * {@code max.request.size} whose handler fails had a dead letter (the record with the dlt-* headers added) over the
 * limit, which Kafka refused every time (RecordTooLargeException), so its partition was redelivered for ever and the
 * records after it never handled. Its redelivery now dead-letters it without its payload, naming where the original
 * is; in plain and in exactly-once mode alike.
 */
class DeadLetterTooLargeTest {
    record OrderCreated(String orderId, long amount) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** With the dlt-* headers it takes the dead letter over the limit the record itself fits. */
    private static final String DECLINED = "card declined: " + "x".repeat(3_000);

    @Test
    void aRecordWhoseDeadLetterIsTooLargeForKafkaIsDeadLetteredWithoutItsPayloadAndItsPartitionMovesOn() {
        deadLettersWithoutThePayload(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    @Test
    void inExactlyOnceModeTooARecordWhoseDeadLetterIsTooLargeIsDeadLetteredWithoutItsPayload() {
        deadLettersWithoutThePayload(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    private static void deadLettersWithoutThePayload(KafkaTransport transport) {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        List<String> handled = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.NONE)
                .build()) {
            bus.publish(orders, "k", new OrderCreated("x".repeat(1_047_000), 1)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("after", 2)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (event, ctx) -> {
                        if (event.orderId().length() > 100) {
                            throw new IllegalStateException(DECLINED);
                        }
                        handled.add(event.orderId());
                    });
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);

            assertEquals(List.of("after"), handled);
            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(1, deadLetters.size(), "one dead letter, the one without the payload");
            ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
            assertNull(deadLetter.value());
            assertNotNull(header(deadLetter, "dlt-payload-omitted"));
            assertEquals(orders, header(deadLetter, "dlt-original-topic"));
            assertEquals("0", header(deadLetter, "dlt-original-offset"));
            assertEquals(group, header(deadLetter, "dlt-original-group"));
            assertEquals("handler-failed", header(deadLetter, "dlt-reason"));
            assertEquals(DECLINED, header(deadLetter, "dlt-error-message"));
            assertEquals("k", deadLetter.key());
        } finally {
            transport.close();
        }
    }
}
