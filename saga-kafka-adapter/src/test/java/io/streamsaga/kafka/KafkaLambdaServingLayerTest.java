package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Lambda serving layer of docs/architectures.md on Kafka, as an application runs it: a topic of three partitions
 * with keys spread over them, a batch view recomputed while the speed layer keeps folding, and the layer built again
 * over the same name after a restart. The view keeps, per key, the sequence numbers folded in order (the merge puts
 * the batch view's before the real-time view's), so an event counted twice, one missed, or a key's events out of
 * order all show.
 */
class KafkaLambdaServingLayerTest {
    record OrderPlaced(String customer, int seq) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** Keys over all three partitions (c-6 and c-7 on 0, c-2 to c-5 on 1, c-0 and c-1 on 2). */
    private static final List<String> CUSTOMERS = IntStream.range(0, 8).mapToObj(i -> "c-" + i).toList();

    /** Per customer, the sequence numbers of its orders, in the order they were folded. */
    private static Map<String, List<Integer>> fold(Map<String, List<Integer>> view, OrderPlaced event) {
        Map<String, List<Integer>> next = new TreeMap<>(view);
        List<Integer> seqs = new ArrayList<>(next.getOrDefault(event.customer(), List.of()));
        seqs.add(event.seq());
        next.put(event.customer(), List.copyOf(seqs));
        return Collections.unmodifiableMap(next);
    }

    private static Map<String, List<Integer>> merge(Map<String, List<Integer>> batch, Map<String, List<Integer>> realtime) {
        Map<String, List<Integer>> merged = new TreeMap<>(batch);
        realtime.forEach((customer, seqs) -> {
            List<Integer> all = new ArrayList<>(merged.getOrDefault(customer, List.of()));
            all.addAll(seqs);
            merged.put(customer, List.copyOf(all));
        });
        return merged;
    }

    /** What a recount of the log gives once every customer's orders {@code 0..count-1} are in it. */
    private static Map<String, List<Integer>> recount(int count) {
        Map<String, List<Integer>> expected = new TreeMap<>();
        CUSTOMERS.forEach(c -> expected.put(c, IntStream.range(0, count).boxed().toList()));
        return expected;
    }

    private static ServingLayer<OrderPlaced, Map<String, List<Integer>>> layer(EventBus bus, String name, String topic) {
        return ServingLayer.builder(bus, name, topic, OrderPlaced.class)
                .view(Map::<String, List<Integer>>of, KafkaLambdaServingLayerTest::fold)
                .merge(KafkaLambdaServingLayerTest::merge)
                .build();
    }

    private static KafkaTransport transport() {
        return KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build();
    }

    private static EventBus bus(KafkaTransport kafka) {
        return EventBus.builder(kafka).types(TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class).build())
                .build();
    }

    private static void createTopic(String topic) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
        }
    }

    private static void publish(EventBus bus, String topic, int fromSeq, int toSeq) {
        List<CompletableFuture<?>> sent = new ArrayList<>();
        for (int seq = fromSeq; seq < toSeq; seq++) {
            for (String customer : CUSTOMERS) {
                sent.add(bus.publish(topic, customer, new OrderPlaced(customer, seq)).toCompletableFuture());
            }
        }
        sent.forEach(CompletableFuture::join);
    }

    /** Waits until the layer's answer covers the whole log as it is now, and returns that answer. */
    private static ServingLayer.Answer<Map<String, List<Integer>>> answerAtTheEnd(
            KafkaTransport kafka, String topic, ServingLayer<OrderPlaced, Map<String, List<Integer>>> serving) {
        Map<Integer, Long> end = kafka.endOffsets(topic);
        // a partition no event reached yet may be missing from the position (nothing of it covered)
        await().atMost(WAIT).until(() -> {
            Map<Integer, Long> position = serving.answer().position();
            return end.entrySet().stream().allMatch(e -> position.getOrDefault(e.getKey(), 0L).equals(e.getValue()));
        });
        return serving.answer();
    }

    @Test
    void aBatchRecomputedWhileTheSpeedLayerKeepsFoldingCountsEveryEventOnceInKeyOrder() throws Exception {
        String topic = SharedKafkaBroker.unique("orders");
        createTopic(topic);
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             ServingLayer<OrderPlaced, Map<String, List<Integer>>> serving = layer(bus, SharedKafkaBroker.unique("order-metrics"), topic)) {
            publish(bus, topic, 0, 5);
            serving.start();
            // the daily job runs while orders keep coming and the speed layer folds them
            CompletableFuture<BatchView<Map<String, List<Integer>>>> first = serving.recomputeBatch().toCompletableFuture();
            publish(bus, topic, 5, 10);
            BatchView<Map<String, List<Integer>>> batch = first.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            publish(bus, topic, 10, 12);

            ServingLayer.Answer<Map<String, List<Integer>>> answer = answerAtTheEnd(kafka, topic, serving);
            assertEquals(recount(12), answer.view());
            assertEquals(batch.covers(), serving.batchView().covers(), "the recompute installed its view");
            long covered = batch.covers().values().stream().mapToLong(Long::longValue).sum();
            assertTrue(covered >= 5 * CUSTOMERS.size(), "the batch covers at least the log at its start: " + batch.covers());
            assertEquals(12 * CUSTOMERS.size() - covered, serving.uncoveredEvents(), "the real-time side keeps only the rest");

            // a second run while the speed layer goes on covers everything so far, nothing counted twice
            CompletableFuture<BatchView<Map<String, List<Integer>>>> second = serving.recomputeBatch().toCompletableFuture();
            publish(bus, topic, 12, 14);
            second.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertEquals(recount(14), answerAtTheEnd(kafka, topic, serving).view());
        }
    }

    @Test
    void anUndecodableEventIsLeftOutOfEveryAnswerAndDeadLetteredOnceByTheSpeedLayerAndOnceByEachBatchRun() throws Exception {
        String topic = SharedKafkaBroker.unique("orders");
        String name = SharedKafkaBroker.unique("order-metrics");
        createTopic(topic);
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             Subscription dlt = bus.subscribe(SharedKafkaBroker.unique("ops"), topic + ".DLT", Message.class,
                     SubscriptionOptions.fromEarliest(), (message, ctx) -> deadLetters.add(message));
             ServingLayer<OrderPlaced, Map<String, List<Integer>>> serving = layer(bus, name, topic).start()) {
            publish(bus, topic, 0, 2);
            kafka.send(Message.builder(topic).key("c-0").type("order-placed")
                    .payload("not json".getBytes(StandardCharsets.UTF_8)).build()).toCompletableFuture().join();
            publish(bus, topic, 2, 3); // c-0's next order takes the position past the poison
            assertEquals(recount(3), answerAtTheEnd(kafka, topic, serving).view());

            serving.recomputeBatch().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertEquals(recount(3), answerAtTheEnd(kafka, topic, serving).view());
            serving.recomputeBatch().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            await().atMost(WAIT).until(() -> deadLetters.size() == 3);
        }
        // each run reads the log under a new group, which meets the poison again
        assertEquals(List.of(name + ".batch-1." + topic, name + ".batch-2." + topic, name + ".realtime"),
                deadLetters.stream().map(m -> m.header(MessageHeaders.DLT_ORIGINAL_GROUP).orElseThrow() + ":"
                        + m.header(MessageHeaders.DLT_REASON).orElseThrow()).sorted()
                        .map(s -> s.replace(":undecodable", "")).toList(), deadLetters.toString());
    }

    @Test
    void aLayerBuiltAgainOverTheSameNameAfterARestartAnswersForTheWholeLogItsPositionClaims() throws Exception {
        // architectures.md: build().start(), then the daily recompute; after a restart the application does the same.
        String topic = SharedKafkaBroker.unique("orders");
        String name = SharedKafkaBroker.unique("order-metrics");
        createTopic(topic);
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             ServingLayer<OrderPlaced, Map<String, List<Integer>>> serving = layer(bus, name, topic).start()) {
            publish(bus, topic, 0, 4);
            assertEquals(recount(4), answerAtTheEnd(kafka, topic, serving).view());
        }
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka)) {
            publish(bus, topic, 4, 6); // while the application was down
        }
        try (KafkaTransport kafka = transport(); EventBus bus = bus(kafka);
             ServingLayer<OrderPlaced, Map<String, List<Integer>>> serving = layer(bus, name, topic).start()) {
            publish(bus, topic, 6, 8);
            ServingLayer.Answer<Map<String, List<Integer>>> answer = answerAtTheEnd(kafka, topic, serving);
            assertEquals(recount(8), answer.view(), "the answer claims every event below " + answer.position());

            serving.recomputeBatch().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertEquals(recount(8), answerAtTheEnd(kafka, topic, serving).view());
        }
    }
}
