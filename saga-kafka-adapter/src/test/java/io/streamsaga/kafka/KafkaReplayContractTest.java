package io.streamsaga.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.contract.ReplayContractTest;
import io.streamsaga.kappa.ReplayProgress;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.message.Message;
import io.streamsaga.spi.Transport;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

    @Test
    void aReplayStartedWhileATransactionIsOpenOnItsTopicCatchesUpWithoutWaitingForTheTransaction() throws Exception {
        // endOffsets read the high watermark, past the records of a transaction still open; the replay group
        // reads read_committed (the default), which stops at the last stable offset, the transaction's first
        // record, until the transaction ends. A replay started then took that watermark as its target and did
        // not catch up while the transaction stayed open (and never, on a quiet topic, when it aborted: no
        // record comes to move the group past it).
        String topic = SharedKafkaBroker.unique("replayed");
        String group = SharedKafkaBroker.unique("rebuild");
        List<String> replayed = new CopyOnWriteArrayList<>();
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
             EventBus bus = EventBus.builder(here).build();
             KafkaProducer<String, byte[]> transactional = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("open")),
                     new StringSerializer(), new ByteArraySerializer())) {
            here.send(Message.builder(topic).key("k").type("t").payload("{\"n\":1}".getBytes(StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            transactional.initTransactions();
            transactional.beginTransaction();
            RecordMetadata open = transactional.send(new ProducerRecord<>(topic, "k", "{}".getBytes(StandardCharsets.UTF_8))).get();

            assertEquals(open.offset(), here.endOffsets(topic).get(open.partition()), "the end a read_committed group can reach");
            Reprocessor reprocessor = Reprocessor.builder(bus).mode(Reprocessor.Mode.UNTIL_TARGET)
                    .on(topic, JsonNode.class, (event, ctx) -> replayed.add(event.toString())).build();
            try (var replay = reprocessor.start(group)) {
                ReplayProgress caughtUp = replay.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertTrue(caughtUp.isComplete());
                assertEquals(List.of("{\"n\":1}"), replayed);
            } finally {
                transactional.abortTransaction();
            }
        }
    }

    @Test
    void aReplayGroupWhoseOnlyCommitsArePendingInATransactionIsNotTakenForUnused() throws Exception {
        // committedOffsets read the group's offsets without a stable read: an offset sent in a transaction not
        // yet complete (another instance's replay in exactly-once mode, between its first batch's offsets and
        // the transaction's markers) was not there, so the group was taken for unused and this replay joined it.
        String topic = SharedKafkaBroker.unique("replayed");
        String group = SharedKafkaBroker.unique("rebuild");
        String topicGroup = Reprocessor.groupFor(group, topic);
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .requestTimeout(Duration.ofSeconds(1)).build();
             KafkaProducer<String, byte[]> otherInstance = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("replaying")),
                     new StringSerializer(), new ByteArraySerializer())) {
            here.send(Message.builder(topic).key("k").type("t").payload("{}".getBytes(StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            otherInstance.initTransactions();
            otherInstance.beginTransaction();
            TopicPartition partition = new TopicPartition(topic, 0);
            // returns once the group's coordinator holds the offset, pending until the transaction completes
            otherInstance.sendOffsetsToTransaction(Map.of(partition, new OffsetAndMetadata(1)), new ConsumerGroupMetadata(topicGroup));

            KafkaTransportException pending = assertThrows(KafkaTransportException.class,
                    () -> Reprocessor.isUnused(here, group, List.of(topic)));
            assertTrue(pending.isRetriable(), pending.toString());

            otherInstance.commitTransaction();
            assertFalse(Reprocessor.isUnused(here, group, List.of(topic)));
            assertEquals(Map.of(0, 1L), here.committedOffsets(topicGroup, topic));
        }
    }

    @ParameterizedTest(name = "transaction commits: {0}")
    @ValueSource(booleans = {true, false})
    void waitingForOffsetsPendingInATransactionDoesNotHaveKafkaLogAWarningForEveryRead(boolean commits) throws Exception {
        // committedOffsets read the offsets stable again every 50 ms while a transaction held them pending, and
        // Kafka's admin client logs a warning for each pending partition of each stable read ("Skipping return
        // offset for ... due to error UNSTABLE_OFFSET_COMMIT"): twenty a second for as long as the transaction
        // stayed open, from a normal call (Reprocessor's checks). Reads slf4j-simple's output (System.err); the
        // admin client's requests are counted through its metrics.
        String topic = SharedKafkaBroker.unique("replayed");
        String group = SharedKafkaBroker.unique("rebuild");
        AtomicReference<KafkaMetric> requests = new AtomicReference<>();
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .adminProperty(AdminClientConfig.METRIC_REPORTER_CLASSES_CONFIG, RequestCounter.class.getName())
                .adminProperty(RequestCounter.SINK, requests).build();
             KafkaProducer<String, byte[]> otherInstance = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("replaying")),
                     new StringSerializer(), new ByteArraySerializer())) {
            here.send(Message.builder(topic).key("k").type("t").payload("{}".getBytes(StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            otherInstance.initTransactions();
            otherInstance.beginTransaction();
            otherInstance.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)),
                    new ConsumerGroupMetadata(group));
            System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
            CompletableFuture<Map<Integer, Long>> read = CompletableFuture.supplyAsync(() -> here.committedOffsets(group, topic));
            String warning = "Skipping return offset for " + topic + "-0 due to error UNSTABLE_OFFSET_COMMIT";
            await().atMost(Duration.ofSeconds(30)).until(() -> captured.toString(StandardCharsets.UTF_8).contains(warning));
            double before = (Double) requests.get().metricValue();
            // it found the offset pending; it asks again (each read is two requests) while the transaction is open
            await().atMost(Duration.ofSeconds(30)).until(() -> (Double) requests.get().metricValue() >= before + 4);
            if (commits) {
                otherInstance.commitTransaction();
                assertEquals(Map.of(0, 1L), read.get(30, TimeUnit.SECONDS));
            } else { // a plain read cannot tell it from one still open: a later stable read does
                otherInstance.abortTransaction();
                assertEquals(Map.of(), read.get(30, TimeUnit.SECONDS));
            }
            String logged = captured.toString(StandardCharsets.UTF_8);
            assertEquals(1, logged.split(java.util.regex.Pattern.quote(warning), -1).length - 1, logged);
        } finally {
            System.setErr(original);
        }
    }

    @Test
    void aTransactionThatAbortsAfterTheLastStableReadBeforeRequestTimeoutIsNoticedNotReportedAsStillPending() throws Exception {
        // While offsets were pending, committedOffsets read them stable only after 1 s, 2 s, 4 s..., and at
        // requestTimeout it failed without reading them stable again: a transaction that aborted after the last
        // stable read (here the one at 3 s, the next being due at 7 s, after the 6 s requestTimeout) was reported
        // as "pending in a transaction not complete within" requestTimeout, though it had completed.
        String topic = SharedKafkaBroker.unique("replayed");
        String group = SharedKafkaBroker.unique("rebuild");
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .requestTimeout(Duration.ofSeconds(6)).build();
             KafkaProducer<String, byte[]> otherInstance = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("replaying")),
                     new StringSerializer(), new ByteArraySerializer())) {
            here.send(Message.builder(topic).key("k").type("t").payload("{}".getBytes(StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            otherInstance.initTransactions();
            otherInstance.beginTransaction();
            otherInstance.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)),
                    new ConsumerGroupMetadata(group));
            System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
            CompletableFuture<Map<Integer, Long>> read = CompletableFuture.supplyAsync(() -> here.committedOffsets(group, topic));
            String warning = "Skipping return offset for " + topic + "-0 due to error UNSTABLE_OFFSET_COMMIT";
            // each stable read that finds the offset pending logs the warning once: the third is the last one
            // before requestTimeout
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(10)).until(() ->
                    captured.toString(StandardCharsets.UTF_8).split(java.util.regex.Pattern.quote(warning), -1).length - 1 >= 3);
            otherInstance.abortTransaction();
            assertEquals(Map.of(), read.get(30, TimeUnit.SECONDS));
        } finally {
            System.setErr(original);
        }
    }

    @Test
    void caughtUpToNowCompletesOnATopicWrittenInTransactionsThoughNoHandlerSeesTheMarkerBeforeTheEnd() throws Exception {
        // An exactly-once relay publishes each event in its handler's transaction, so the topic's end offset lies past
        // the transaction's commit marker, which no handler is ever given: the projection's handled position stops
        // one short of it, and only the group's committed offset (the consumer's position, past the marker) reaches it.
        String commands = SharedKafkaBroker.unique("commands");
        String orders = SharedKafkaBroker.unique("orders");
        io.streamsaga.codec.TypeRegistry types = io.streamsaga.codec.TypeRegistry.builder()
                .register("replay-contract-order-placed", 1, ReplayOrderPlaced.class).build();
        try (KafkaTransport relayTransport = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(SharedKafkaBroker.unique("relay")).build();
             EventBus relay = EventBus.builder(relayTransport).types(types).build();
             KafkaTransport viewTransport = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
             EventBus views = EventBus.builder(viewTransport).types(types).build();
             io.streamsaga.cqrs.Projection<Map<String, Long>> projection = io.streamsaga.cqrs.Projection.<Map<String, Long>>create(
                     views, SharedKafkaBroker.unique("view")).start(io.streamsaga.cqrs.ProjectionDefinition
                     .<Map<String, Long>>builder(java.util.concurrent.ConcurrentHashMap::new)
                     .on(orders, ReplayOrderPlaced.class, (model, e, ctx) -> model.put(e.orderId(), e.amount())).build())) {
            relay.subscribe(SharedKafkaBroker.unique("relay"), commands, ReplayOrderPlaced.class,
                    io.streamsaga.bus.SubscriptionOptions.fromEarliest(), (e, ctx) -> relay.publish(orders, e.orderId(), e));
            relay.publish(commands, "o-1", new ReplayOrderPlaced("o-1", 100)).toCompletableFuture().join();
            // the relayed event's transaction committed: the record at 0 of its partition, the marker at 1; the topic's
            // other partitions have no record
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    viewTransport.endOffsets(orders).values().stream().mapToLong(Long::longValue).sum() == 2);

            ReplayProgress applied = projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);

            assertEquals(Map.of("o-1", 100L), projection.readModel());
            assertTrue(applied.isComplete(), applied.toString());
            assertEquals(2, applied.total(), "the record and its transaction's marker");
        }
    }

    @Test
    void aProjectionOnATopicWhoseLastWriteWasTransactionalCatchesUpAndItsRebuildSwapsInWithNoFurtherRecord() throws Exception {
        // The topic's end offset (the target taken at the start) lies past the last transaction's commit marker, which no
        // handler is given: the handled position stops one short of it. caughtUp() was checked only when a handled record
        // took a partition to its target, so on a quiet topic it never completed (nor did a rebuild swap in) until the
        // next record or a progress() call; only the group's committed offset (the consumer's position) passes the marker.
        String topic = SharedKafkaBroker.unique("orders");
        try (KafkaTransport here = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
             EventBus views = EventBus.builder(here).build();
             KafkaProducer<String, byte[]> transactional = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers(),
                     ProducerConfig.TRANSACTIONAL_ID_CONFIG, SharedKafkaBroker.unique("writer")),
                     new StringSerializer(), new ByteArraySerializer())) {
            transactional.initTransactions();
            transactional.beginTransaction();
            RecordMetadata written = transactional.send(new ProducerRecord<>(topic, "o-1",
                    "{\"orderId\":\"o-1\",\"amount\":100}".getBytes(StandardCharsets.UTF_8))).get();
            transactional.commitTransaction();
            // the marker is written once the coordinator completes the commit, after commitTransaction returned
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    here.endOffsets(topic).getOrDefault(written.partition(), 0L) == written.offset() + 2);

            try (io.streamsaga.cqrs.Projection<Map<String, Long>> projection = io.streamsaga.cqrs.Projection.<Map<String, Long>>create(
                    views, SharedKafkaBroker.unique("view")).start(io.streamsaga.cqrs.ProjectionDefinition
                    .<Map<String, Long>>builder(java.util.concurrent.ConcurrentHashMap::new)
                    .on(topic, JsonNode.class, (model, e, ctx) -> model.put(e.get("orderId").asText(), e.get("amount").asLong()))
                    .build())) {
                ReplayProgress caughtUp = projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertTrue(caughtUp.isComplete(), caughtUp.toString());
                assertEquals(Map.of("o-1", 100L), projection.readModel());

                Map<String, Long> rebuilt = projection.rebuild().swapped().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertEquals(Map.of("o-1", 100L), rebuilt);
                assertEquals(2, projection.version());
            }
        }
    }

    /** Hands the admin client's total request count to the {@link AtomicReference} given as {@link #SINK}. */
    public static final class RequestCounter implements MetricsReporter {
        static final String SINK = "test.requests.sink";
        private AtomicReference<KafkaMetric> sink;

        @Override
        @SuppressWarnings("unchecked")
        public void configure(Map<String, ?> configs) {
            sink = (AtomicReference<KafkaMetric>) configs.get(SINK);
        }

        @Override
        public void init(List<KafkaMetric> metrics) {
            metrics.forEach(this::metricChange);
        }

        @Override
        public void metricChange(KafkaMetric metric) {
            if (metric.metricName().name().equals("request-total") && metric.metricName().group().equals("admin-client-metrics")) {
                sink.set(metric);
            }
        }

        @Override
        public void metricRemoval(KafkaMetric metric) {
        }

        @Override
        public void close() {
        }
    }
}
