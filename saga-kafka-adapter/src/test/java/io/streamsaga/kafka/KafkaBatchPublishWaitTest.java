package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.kafka.internal.WireFormat;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.NotEnoughReplicasException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * Plain mode with {@code awaitPublishesPerBatch(true)}: the member delivers a poll batch's records while their
 * handlers' publishes are in flight and waits for those publishes before it commits, never past a record whose
 * publishes have not completed. A failed publish is its record's failure (retried per the policy, then
 * dead-lettered), and the records after it are handled at least once; nothing is lost.
 */
class KafkaBatchPublishWaitTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final int RECORDS = 10;
    private static final int FAILING = 3;

    @Test
    void aRecordWhosePublishIsRefusedIsDeadLetteredOnceAndTheRecordsAfterItAreHandledWithNothingLost() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String reactions = SharedKafkaBroker.unique("payment-requested");
        String audit = SharedKafkaBroker.unique("audit");
        String group = SharedKafkaBroker.unique("payment");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(orders, 1, (short) 1), new NewTopic(reactions, 1, (short) 1),
                    new NewTopic(audit, 1, (short) 1).configs(Map.of("max.message.bytes", "1024")))).all().get();
        }
        List<Long> handled = new CopyOnWriteArrayList<>();
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        Set<String> reacted = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap).awaitPublishesPerBatch(true)
                .build();
             EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build()) {
            publishOrders(bus, orders);
            bus.subscribe(SharedKafkaBroker.unique("dlt-reader"), orders + MessageHeaders.DEAD_LETTER_SUFFIX,
                    Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (deadLetter, ctx) -> deadLetters.add(deadLetter));
            bus.subscribe(SharedKafkaBroker.unique("reactions-reader"), reactions, Message.class,
                    SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (reaction, ctx) -> reacted.add(reaction.headers().get("n")));
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (order, ctx) -> {
                        handled.add(ctx.offset());
                        String n = order.headers().get("n");
                        // not awaited: the handler returns before the broker answers
                        if (n.equals(Integer.toString(FAILING))) {
                            bus.publish(Message.builder(audit).key("k").type("audit").payload(new byte[4096]).build());
                        } else {
                            bus.publish(Message.builder(reactions).key("k").type("payment").header("n", n)
                                    .payload(new byte[10]).build());
                        }
                    });

            await().atMost(WAIT).until(() -> Map.of(0, (long) RECORDS).equals(transport.committedOffsets(group, orders)));
            await().atMost(WAIT).until(() -> reacted.size() == RECORDS - 1 && !deadLetters.isEmpty());

            assertEquals(1L, transport.endOffsets(orders + MessageHeaders.DEAD_LETTER_SUFFIX).values().stream()
                    .mapToLong(Long::longValue).sum(), "one dead letter, of the record whose publish the broker refused");
            Message deadLetter = deadLetters.get(0);
            assertEquals(Integer.toString(FAILING), deadLetter.headers().get("n"));
            assertEquals("handler-failed", deadLetter.headers().get(MessageHeaders.DLT_REASON));
            assertEquals(MessageTooLargeException.class.getName(), deadLetter.headers().get(MessageHeaders.DLT_ERROR_CLASS));
            assertTrue(deadLetter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains(audit),
                    deadLetter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE));
            Set<String> expected = new HashSet<>();
            for (int i = 0; i < RECORDS; i++) {
                if (i != FAILING) {
                    expected.add(Integer.toString(i));
                }
            }
            assertEquals(expected, reacted, "every other record's reaction is published");
            assertTrue(new HashSet<>(handled).containsAll(List.of(4L, 5L, 6L, 7L, 8L, 9L)), handled.toString());
        }
    }

    @Test
    void theCommittedOffsetNeverPassesARecordWhosePublishFailedSoARestartedMemberHandlesAgainFromIt() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String reactions = SharedKafkaBroker.unique("payment-requested");
        String group = SharedKafkaBroker.unique("payment");
        SharedKafkaBroker.createTopics(1, orders, reactions);
        List<Long> handled = new CopyOnWriteArrayList<>();
        AtomicBoolean failed = new AtomicBoolean();
        // the failing publish fails once the next record is handled, so after its handler returned: a publish failed
        // already when its handler returns fails the attempt at once, not at the batch's end (DeliveryFinishedLaterTest)
        CompletableFuture<Void> nextHandled = new CompletableFuture<>();
        // one record batch, which a fetch returns whole and a poll (max.poll.records 500) at once: the failing
        // record and those after it are one poll batch, whatever the broker's fetch sizes
        publishOrdersInOneRecordBatch(bootstrap, orders);
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap).awaitPublishesPerBatch(true)
                .producerFactory(properties -> failingOnce(properties, reactions, Integer.toString(FAILING), failed,
                        nextHandled))
                .build();
        try (transport;
             // retried, but only after a backoff that outlasts the test: the record waits at its failed publish
             EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.builder().maxAttempts(3)
                     .initialBackoff(Duration.ofMinutes(10)).build()).build()) {
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (order, ctx) -> {
                        handled.add(ctx.offset());
                        if (ctx.offset() == FAILING + 1) {
                            nextHandled.complete(null);
                        }
                        bus.publish(Message.builder(reactions).key("k").type("payment").header("n", order.headers().get("n"))
                                .payload(new byte[10]).build());
                    });

            // handled past the record whose publish failed (one poll batch), committed only up to it
            await().atMost(WAIT).until(() -> handled.contains((long) RECORDS - 1) && failed.get());
            await().atMost(WAIT).until(() -> Map.of(0, (long) FAILING).equals(transport.committedOffsets(group, orders)));
        }
        try (KafkaTransport check = KafkaTransport.builder().bootstrapServers(bootstrap).build()) {
            assertEquals(Map.of(0, (long) FAILING), check.committedOffsets(group, orders),
                    "closing committed nothing past the record whose publish failed");
        }

        List<Long> handledAgain = new CopyOnWriteArrayList<>();
        Set<String> reacted = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (KafkaTransport restarted = KafkaTransport.builder().bootstrapServers(bootstrap).awaitPublishesPerBatch(true)
                .build();
             EventBus bus = EventBus.builder(restarted).build()) {
            bus.subscribe(SharedKafkaBroker.unique("reactions-reader"), reactions, Message.class,
                    SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (reaction, ctx) -> reacted.add(reaction.headers().get("n")));
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (order, ctx) -> {
                        handledAgain.add(ctx.offset());
                        bus.publish(Message.builder(reactions).key("k").type("payment").header("n", order.headers().get("n"))
                                .payload(new byte[10]).build());
                    });

            await().atMost(WAIT).until(() -> Map.of(0, (long) RECORDS).equals(restarted.committedOffsets(group, orders)));
            assertEquals(FAILING, handledAgain.get(0), "the restarted member starts at the record whose publish failed");
            await().atMost(WAIT).until(() -> reacted.size() == RECORDS);
        }
    }

    /** Publishes {@link #RECORDS} orders with one key, numbered by an {@code n} header, and waits for them. */
    private static void publishOrders(EventBus bus, String orders) {
        for (int i = 0; i < RECORDS; i++) {
            bus.publish(Message.builder(orders).key("k").type("order").header("n", Integer.toString(i))
                    .payload(new byte[10]).build()).toCompletableFuture().join();
        }
    }

    /**
     * Publishes {@link #RECORDS} orders as {@link #publishOrders} does, in one record batch: the producer lingers
     * longer than the test, so the sends gather in one batch of the partition, which the flush sends.
     */
    private static void publishOrdersInOneRecordBatch(String bootstrap, String orders) throws Exception {
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ProducerConfig.LINGER_MS_CONFIG, 60_000,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000, ProducerConfig.BATCH_SIZE_CONFIG, 1 << 20), new StringSerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                sent.add(producer.send(WireFormat.toRecord(Message.builder(orders).key("k").type("order")
                        .header("n", Integer.toString(i)).payload(new byte[10]).build())));
            }
            producer.flush();
            for (Future<RecordMetadata> record : sent) {
                record.get();
            }
        }
    }

    /**
     * A real producer whose first send to {@code topic} of the record whose {@code n} header is {@code n} fails
     * afterwards with a retriable error, as a broker short of in-sync replicas answers; {@code failed} is set then.
     */
    @SuppressWarnings("unchecked")
    private static Producer<String, byte[]> failingOnce(Map<String, Object> properties, String topic, String n,
                                                        AtomicBoolean failed, CompletableFuture<Void> failWhen) {
        KafkaProducer<String, byte[]> real = new KafkaProducer<>(properties, new StringSerializer(),
                new ByteArraySerializer());
        Producer<String, byte[]> producer = mock(Producer.class, delegatesTo(real));
        doAnswer(call -> {
            ProducerRecord<String, byte[]> record = call.getArgument(0);
            Callback callback = call.getArgument(1);
            var header = record.headers().lastHeader("n");
            if (record.topic().equals(topic) && header != null && n.equals(new String(header.value(),
                    java.nio.charset.StandardCharsets.UTF_8)) && !failed.get()) {
                NotEnoughReplicasException error = new NotEnoughReplicasException("not enough in-sync replicas (test)");
                // answered later, from another thread, as the producer's I/O thread does
                failWhen.thenRunAsync(() -> {
                    failed.set(true);
                    callback.onCompletion(null, error);
                });
                return CompletableFuture.failedFuture(error);
            }
            return real.send(record, callback);
        }).when(producer).send(any(), any());
        return producer;
    }
}
