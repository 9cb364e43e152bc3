package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * In exactly-once mode a handler's publish that the broker or the producer always refuses (a record over the topic's
 * {@code max.message.bytes}, or over the producer's {@code max.request.size}) left the batch's transaction unable to
 * commit: it was aborted and the batch handled again after the backoff, refused again, for ever, the partition stuck
 * and nothing saying which record. The refusal is the handling failure of the record whose handler published it: at
 * the batch's next handling that record is dead-lettered (the refusal is not retriable), naming the refused publish's
 * topic, and the batch's other records commit, their own publishes once.
 */
class ExactlyOnceRefusedPublishTest {
    private static final Duration WAIT = Duration.ofSeconds(45);
    private static final SubscriptionOptions FROM_EARLIEST = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);

    @Test
    void aPublishTheBrokerRefusesDeadLettersItsRecordAndTheBatchsOthersCommitOnce() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String audit = SharedKafkaBroker.unique("audit");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(audit, 1, (short) 1)
                    .configs(Map.of("max.message.bytes", "1024")))).all().get();
        }
        // under the producer's max.request.size: the broker refuses it, after the handler returned
        refusedPublishIsDeadLettered(bootstrap, audit, KafkaTransport.builder().bootstrapServers(bootstrap));
    }

    @Test
    void aPublishTheProducerRefusesDeadLettersItsRecordAndTheBatchsOthersCommitOnce() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String audit = SharedKafkaBroker.unique("audit");
        SharedKafkaBroker.createTopics(1, audit);
        // over the producer's max.request.size: refused in the handler's send
        refusedPublishIsDeadLettered(bootstrap, audit, KafkaTransport.builder().bootstrapServers(bootstrap)
                .producerProperty(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 2048));
    }

    /**
     * Three orders in one batch, the second's handler publishing 4 KiB to {@code audit}, which {@code builder}'s member
     * cannot publish; each handler publishes a receipt, not awaited. Then a fourth order.
     */
    private static void refusedPublishIsDeadLettered(String bootstrap, String audit, KafkaTransport.Builder builder)
            throws Exception {
        String orders = SharedKafkaBroker.unique("order-created");
        String receipts = SharedKafkaBroker.unique("receipts");
        String group = SharedKafkaBroker.unique("payment");
        SharedKafkaBroker.createTopics(1, orders, receipts, orders + MessageHeaders.DEAD_LETTER_SUFFIX);
        KafkaTransport plain = KafkaTransport.builder().bootstrapServers(bootstrap).build();
        KafkaTransport transport = builder.exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(200)).build();
        try (EventBus publisher = EventBus.builder(plain).build();
             EventBus bus = EventBus.builder(transport)
                     .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build()) {
            // in the log before the group's first poll: one batch
            for (String id : List.of("a", "big", "c")) {
                publisher.publish(order(orders, id)).toCompletableFuture().join();
            }
            bus.subscribe(group, orders, Message.class, FROM_EARLIEST, (order, ctx) -> {
                String id = new String((byte[]) order.payload(), StandardCharsets.UTF_8);
                // neither is awaited: the handler returns before the broker answers
                bus.publish(Message.builder(receipts).key(id).type("receipt").payload(id.getBytes(StandardCharsets.UTF_8))
                        .build());
                if (id.equals("big")) {
                    bus.publish(Message.builder(audit).key(id).type("audit").payload(new byte[4096]).build());
                }
            });

            await().atMost(WAIT).until(() -> committed(transport, group, orders) == 3);
            publisher.publish(order(orders, "d")).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> committed(transport, group, orders) == 4); // the partition moved on

            List<ConsumerRecord<String, byte[]>> deadLetters =
                    ExactlyOnceTest.readAll(bootstrap, orders + MessageHeaders.DEAD_LETTER_SUFFIX, "read_committed");
            assertEquals(1, deadLetters.size(), "dead-lettered once");
            ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
            assertEquals("1", header(deadLetter, MessageHeaders.DLT_ORIGINAL_OFFSET), "the order whose publish was refused");
            assertEquals("handler-failed", header(deadLetter, MessageHeaders.DLT_REASON));
            assertEquals(MessageTooLargeException.class.getName(), header(deadLetter, MessageHeaders.DLT_ERROR_CLASS));
            String reason = header(deadLetter, MessageHeaders.DLT_ERROR_MESSAGE);
            assertTrue(reason.contains(audit), "names the refused publish's topic: " + reason);

            List<String> receipted = ExactlyOnceTest.readAll(bootstrap, receipts, "read_committed").stream()
                    .map(ConsumerRecord::key).sorted().toList();
            assertEquals(List.of("a", "c", "d"), receipted, "the batch's other records' receipts, once each");
        } finally {
            transport.close();
            plain.close();
        }
    }

    private static Message order(String topic, String id) {
        return Message.builder(topic).key("k").type("order").payload(id.getBytes(StandardCharsets.UTF_8)).build();
    }

    private static long committed(KafkaTransport transport, String group, String topic) {
        return transport.committedOffsets(group, topic).values().stream().mapToLong(Long::longValue).sum();
    }

    private static String header(ConsumerRecord<String, byte[]> record, String name) {
        return new String(record.headers().lastHeader(name).value(), StandardCharsets.UTF_8);
    }
}
