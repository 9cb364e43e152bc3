package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * In exactly-once mode a handler's publish that nobody awaits, refused by the broker as too large (over the topic's
 * {@code max.message.bytes}, under the producer's {@code max.request.size}), leaves the transaction in an error state,
 * and Kafka's producer aborts the records of the transaction it has not sent yet with that refusal, a record's dead
 * letter among them: the dead letter was taken for too large itself and its redelivery sent it without its payload,
 * although it fitted. The broker cannot be made to order the producer's threads on cue, so the member's transactional
 * producer is a fake; its records come from the broker.
 */
class DeadLetterBesideARefusedPublishTest {
    private static final Duration WAIT = Duration.ofSeconds(60);

    /**
     * Takes everything, except that the first record sent to {@code refusedTopic} stays unanswered until the next
     * send, which finds the transaction aborted: the broker refuses that record ({@code RecordTooLargeException}), and
     * the producer's I/O thread aborts the record just sent with the same exception, the transaction's last error.
     */
    private static final class RefusingOnceProducer extends MockProducer<String, byte[]> {
        private final String refusedTopic;
        private Callback refused;
        private boolean refusedOnce;

        RefusingOnceProducer(String refusedTopic) {
            super(true, null, new StringSerializer(), new ByteArraySerializer());
            this.refusedTopic = refusedTopic;
        }

        @Override
        public synchronized Future<RecordMetadata> send(ProducerRecord<String, byte[]> record, Callback callback) {
            if (record.topic().equals(refusedTopic) && !refusedOnce) {
                refusedOnce = true;
                refused = callback;
                return new CompletableFuture<>();
            }
            if (refused != null) {
                RecordTooLargeException refusal = new RecordTooLargeException("The request included a message larger"
                        + " than the max message size the server will accept.");
                refused.onCompletion(null, refusal);
                refused = null;
                callback.onCompletion(null, refusal);
                return CompletableFuture.failedFuture(refusal);
            }
            return super.send(record, callback);
        }
    }

    /**
     * An exactly-once transport whose members' transactional producers are {@link RefusingOnceProducer}s of
     * {@code refusedTopic}, each added to {@code producers}.
     */
    private static KafkaTransport refusingOnce(String bootstrap, String refusedTopic, List<RefusingOnceProducer> producers) {
        return KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service")).redeliveryBackoff(Duration.ofMillis(100))
                .producerFactory(properties -> {
                    RefusingOnceProducer producer = new RefusingOnceProducer(refusedTopic);
                    producers.add(producer);
                    return producer;
                }).build();
    }

    /** The dead letters of {@code topic}'s record at {@code offset} the fake producers' transactions committed. */
    private static java.util.stream.Stream<ProducerRecord<String, byte[]>> deadLettersOf(
            List<RefusingOnceProducer> producers, String topic, String offset) {
        return producers.stream().flatMap(p -> p.history().stream())
                .filter(r -> r.topic().equals(topic + MessageHeaders.DEAD_LETTER_SUFFIX))
                .filter(r -> offset.equals(new String(r.headers().lastHeader(MessageHeaders.DLT_ORIGINAL_OFFSET).value(),
                        java.nio.charset.StandardCharsets.UTF_8)));
    }

    @Test
    void aDeadLetterAbortedWithTheRefusalOfAnotherRecordOfItsTransactionIsSentWholeInTheNext() {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String audit = SharedKafkaBroker.unique("audit");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport plain = KafkaTransport.builder().bootstrapServers(bootstrap).build();
        List<RefusingOnceProducer> producers = new java.util.concurrent.CopyOnWriteArrayList<>();
        KafkaTransport transport = refusingOnce(bootstrap, audit, producers);
        try (EventBus publisher = EventBus.builder(plain).build();
             EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build()) {
            // one partition, one batch: a record whose handler publishes without awaiting, then one that fails
            publisher.publish(Message.builder(orders).key("k").type("order").payload(Map.of("id", "audited")).build())
                    .toCompletableFuture().join();
            publisher.publish(Message.builder(orders).key("k").type("order").payload(Map.of("id", "declined")).build())
                    .toCompletableFuture().join();
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (order, ctx) -> {
                        if (ctx.offset() == 1) {
                            throw new IllegalStateException("declined");
                        }
                        // not awaited: the handler returns at once
                        bus.publish(Message.builder(audit).key("k").type("audit").payload(new byte[10]).build());
                    });

            await().atMost(WAIT).until(() -> deadLettersOf(producers, orders, "1").count() == 1);

            ProducerRecord<String, byte[]> deadLetter = deadLettersOf(producers, orders, "1").findFirst().orElseThrow();
            assertNull(deadLetter.headers().lastHeader(MessageHeaders.DLT_PAYLOAD_OMITTED),
                    "the dead letter fitted: it was aborted with the audit record's refusal");
            assertNotNull(deadLetter.value());
            assertEquals("k", deadLetter.key());
            // the audited record, whose publish the broker refused, is dead-lettered too (ExactlyOnceRefusedPublishTest)
            assertEquals(1, deadLettersOf(producers, orders, "0").count(), "one dead letter of the audited record");
        } finally {
            transport.close();
            plain.close();
        }
    }

    @Test
    void aHandlersAwaitedPublishAbortedWithTheRefusalOfAnotherRecordsPublishIsRetriedNotDeadLettered() {
        // The awaited publish of the batch's second record, aborted by Kafka's producer with the refusal of the first
        // record's publish, failed as a non-retriable PublishException, so the bus dead-lettered a record that was
        // not at fault at its first attempt: its publish goes through in the next transaction.
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String audit = SharedKafkaBroker.unique("audit");
        String receipts = SharedKafkaBroker.unique("receipts");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport plain = KafkaTransport.builder().bootstrapServers(bootstrap).build();
        List<RefusingOnceProducer> producers = new java.util.concurrent.CopyOnWriteArrayList<>();
        KafkaTransport transport = refusingOnce(bootstrap, audit, producers);
        List<Integer> attempts = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventBus publisher = EventBus.builder(plain).build();
             EventBus bus = EventBus.builder(transport)
                     .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build()) {
            // one partition, one batch: a record whose handler publishes without awaiting, then one that awaits
            publisher.publish(Message.builder(orders).key("k").type("order").payload(Map.of("id", "audited")).build())
                    .toCompletableFuture().join();
            publisher.publish(Message.builder(orders).key("k").type("order").payload(Map.of("id", "paid")).build())
                    .toCompletableFuture().join();
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (order, ctx) -> {
                        if (ctx.offset() == 0) {
                            bus.publish(Message.builder(audit).key("k").type("audit").payload(new byte[10]).build());
                            return;
                        }
                        attempts.add(ctx.attempt());
                        bus.publish(Message.builder(receipts).key("k").type("receipt").payload(new byte[10]).build())
                                .toCompletableFuture().join();
                    });

            // the fake producer's history holds what its transactions committed: the receipt, or the dead letter
            await().atMost(WAIT).until(() -> producers.stream().anyMatch(p -> p.history().stream()
                    .anyMatch(r -> r.topic().equals(receipts))) || deadLettersOf(producers, orders, "1").count() > 0);

            assertEquals(0, deadLettersOf(producers, orders, "1").count(), "no dead letter");
            // the audited record before it, whose publish was refused, is dead-lettered beside its retry
            assertEquals(List.of(1, 2), attempts, "retried once, in the next transaction");
            assertEquals(1, deadLettersOf(producers, orders, "0").count(), "the audited record's dead letter");
            assertEquals(1, producers.stream().flatMap(p -> p.history().stream())
                    .filter(r -> r.topic().equals(receipts)).count(), "its publish committed once");
        } finally {
            transport.close();
            plain.close();
        }
    }
}
