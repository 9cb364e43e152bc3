package io.streamsaga.inmemory.lambda;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletionStage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ServingLayerTest {
    record Sale(String day, long amount) {
    }

    /** count and total per day; immutable */
    record Totals(Map<String, long[]> byDay) {
        static Totals empty() {
            return new Totals(Map.of());
        }

        Totals plus(Sale sale) {
            Map<String, long[]> copy = new TreeMap<>();
            byDay.forEach((d, v) -> copy.put(d, v.clone()));
            long[] v = copy.computeIfAbsent(sale.day(), d -> new long[2]);
            v[0]++;
            v[1] += sale.amount();
            return new Totals(copy);
        }

        Totals merge(Totals other) {
            Map<String, long[]> copy = new TreeMap<>();
            byDay.forEach((d, v) -> copy.put(d, v.clone()));
            other.byDay.forEach((d, v) -> {
                long[] mine = copy.computeIfAbsent(d, k -> new long[2]);
                mine[0] += v[0];
                mine[1] += v[1];
            });
            return new Totals(copy);
        }

        Map<String, List<Long>> asLists() {
            Map<String, List<Long>> out = new TreeMap<>();
            byDay.forEach((d, v) -> out.put(d, List.of(v[0], v[1])));
            return out;
        }
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).scheduler(new VirtualScheduler()).build();
    private final List<Published> published = new ArrayList<>();

    record Published(RecordPosition position, Sale sale) {
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private ServingLayer<Sale, Totals> layer() {
        return ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(Totals::empty, Totals::plus)
                .merge(Totals::merge)
                .build().start();
    }

    private void publish(Sale sale) {
        RecordPosition position = bus.publish("sales", sale.day() + "-" + published.size(), sale).toCompletableFuture().join();
        published.add(new Published(position, sale));
    }

    /** A full recount of the events below {@code position}. */
    private Totals recount(Map<Integer, Long> position) {
        Totals totals = Totals.empty();
        for (Published p : published) {
            if (p.position().offset() < position.getOrDefault(p.position().partition(), 0L)) {
                totals = totals.plus(p.sale());
            }
        }
        return totals;
    }

    @Test
    void mergedViewEqualsAFullRecountAtRandomMoments() {
        Random random = new Random(20240501L);
        ServingLayer<Sale, Totals> layer = layer();
        List<CompletionStage<BatchView<Totals>>> batches = new ArrayList<>();
        int checks = 0;
        for (int step = 0; step < 400; step++) {
            int action = random.nextInt(10);
            if (action < 6) {
                publish(new Sale("2024-05-0" + (1 + random.nextInt(5)), 1 + random.nextInt(500)));
            } else if (action < 8) {
                transport.drainAll();
                assertEquals(recount(Map.of(0, Long.MAX_VALUE, 1, Long.MAX_VALUE, 2, Long.MAX_VALUE)).asLists(), layer.query().asLists(),
                        "after drain at step " + step);
                checks++;
            } else if (action < 9) {
                batches.add(layer.recomputeBatch()); // finishes at the next drain; later events are real-time
            } else {
                ServingLayer.Answer<Totals> answer = layer.answer();
                assertEquals(recount(answer.position()).asLists(), answer.view().asLists(), "mid-flight at step " + step);
                checks++;
            }
        }
        transport.drainAll();
        assertEquals(recount(Map.of(0, Long.MAX_VALUE, 1, Long.MAX_VALUE, 2, Long.MAX_VALUE)).asLists(), layer.query().asLists());
        assertTrue(checks > 50);
        assertTrue(batches.size() > 10);
        assertTrue(batches.stream().allMatch(b -> b.toCompletableFuture().isDone()));
        assertTrue(layer.batchView().covers().values().stream().mapToLong(Long::longValue).sum() > 0);
    }

    @Test
    void batchViewCoversItsPositionAndTheRealtimeSideKeepsOnlyLaterEvents() {
        ServingLayer<Sale, Totals> layer = layer();
        for (int i = 0; i < 6; i++) {
            publish(new Sale("d1", 10));
        }
        transport.drainAll();
        assertEquals(6, layer.uncoveredEvents());

        CompletionStage<BatchView<Totals>> batch = layer.recomputeBatch();
        publish(new Sale("d1", 5)); // after the batch's snapshot
        transport.drainAll();

        BatchView<Totals> installed = batch.toCompletableFuture().join();
        assertEquals(List.of(6L, 60L), installed.view().asLists().get("d1"));
        assertEquals(List.of(1L, 5L), layer.realtimeView().asLists().get("d1"));
        assertEquals(1, layer.uncoveredEvents());
        assertEquals(List.of(7L, 65L), layer.query().asLists().get("d1"));
    }

    @Test
    void anOlderBatchThanTheInstalledOneIsRefused() {
        ServingLayer<Sale, Totals> layer = layer();
        layer.installBatch(new BatchView<>(Totals.empty(), Map.of(0, 3L), Instant.EPOCH));
        assertThrows(ConfigurationException.class,
                () -> layer.installBatch(new BatchView<>(Totals.empty(), Map.of(0, 2L), Instant.EPOCH)));
    }

    @Test
    void mergedViewMatchesTheRecountOfItsPositionUnderConcurrentDelivery() throws Exception {
        try (InMemoryTransport async = InMemoryTransport.builder().partitions(3).build();
             EventBus asyncBus = EventBus.builder(async)
                     .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
             ServingLayer<Sale, Totals> layer = ServingLayer.builder(asyncBus, "sales", "sales", Sale.class)
                     .view(Totals::empty, Totals::plus).merge(Totals::merge).build().start()) {
            Random random = new Random(7L);
            List<Published> log = new ArrayList<>();
            List<CompletionStage<BatchView<Totals>>> batches = new ArrayList<>();
            for (int step = 0; step < 3000; step++) {
                Sale sale = new Sale("d" + random.nextInt(3), 1 + random.nextInt(100));
                log.add(new Published(asyncBus.publish("sales", "k" + step, sale).toCompletableFuture().join(), sale));
                if (step % 500 == 250) {
                    batches.add(layer.recomputeBatch());
                }
                if (step % 97 == 0) {
                    // every event the answer covers was published (and listed) by this thread already
                    ServingLayer.Answer<Totals> answer = layer.answer();
                    assertEquals(recountOf(log, answer.position()).asLists(), answer.view().asLists(), "at step " + step);
                }
            }
            for (CompletionStage<BatchView<Totals>> batch : batches) {
                batch.toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
            }
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30))
                    .until(() -> layer.answer().position().values().stream().mapToLong(Long::longValue).sum() == 3000);
            assertEquals(recountOf(log, layer.answer().position()).asLists(), layer.query().asLists());
            assertEquals(3000, layer.query().byDay().values().stream().mapToLong(v -> v[0]).sum());
        }
    }

    private static Totals recountOf(List<Published> log, Map<Integer, Long> position) {
        Totals totals = Totals.empty();
        for (Published p : log) {
            if (p.position().offset() < position.getOrDefault(p.position().partition(), 0L)) {
                totals = totals.plus(p.sale());
            }
        }
        return totals;
    }
}
