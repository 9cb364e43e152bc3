package io.streamsaga.micrometer;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MicrometerMetricsRecorderTest {
    record OrderCreated(String orderId) {
    }

    @Test
    void busDeliveriesFailuresAndDeadLettersAreCountedByTopicGroupAndErrorType() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(new VirtualScheduler())
                .metrics(new MicrometerMetricsRecorder(registry)).build()) {
            bus.subscribe("payment", "order-created", OrderCreated.class,
                    SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(2).build()), (e, ctx) -> {
                        if (e.orderId().startsWith("bad")) {
                            throw new IllegalStateException("declined");
                        }
                    });
            bus.publish("order-created", "a", new OrderCreated("ok-1"));
            bus.publish("order-created", "b", new OrderCreated("ok-2"));
            bus.publish("order-created", "c", new OrderCreated("bad-1"));
            transport.drainAll();
        }
        assertEquals(2.0, registry.get("events.processed").tags("topic", "order-created", "group", "payment").counter().count());
        assertEquals(2.0, registry.get("events.failed").tags("error_type", "IllegalStateException").counter().count());
        assertEquals(1.0, registry.get("events.dead.lettered").tags("reason", "handler-failed").counter().count());
        assertEquals(2L, registry.get("event.latency").tags("topic", "order-created").timer().count());
    }

    @Test
    void prometheusScrapeUsesTheSourceNames() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        metrics.eventProcessed("order-created", "payment", Duration.ofMillis(12));
        metrics.eventFailed("order-created", "payment", "TimeoutException");
        metrics.eventDeadLettered("order-created", "payment", "handler-failed");
        metrics.sagaStarted("order-saga");
        metrics.sagaFinished("order-saga", "compensated", Duration.ofSeconds(2));
        metrics.increment("flow_stalled", Map.of("flow", "order"));

        String scrape = registry.scrape();
        assertTrue(scrape.contains("events_processed_total{group=\"payment\",topic=\"order-created\"} 1"), scrape);
        assertTrue(scrape.contains("events_failed_total{error_type=\"TimeoutException\",group=\"payment\",topic=\"order-created\"} 1"), scrape);
        assertTrue(scrape.contains("events_dead_lettered_total{"), scrape);
        assertTrue(scrape.contains("event_latency_seconds_bucket{"), scrape);
        assertTrue(scrape.contains("saga_started_total{saga=\"order-saga\"} 1"), scrape);
        assertTrue(scrape.contains("saga_finished_total{outcome=\"compensated\",saga=\"order-saga\"} 1"), scrape);
        assertTrue(scrape.contains("saga_duration_seconds_count{outcome=\"compensated\",saga=\"order-saga\"} 1"), scrape);
        assertTrue(scrape.contains("flow_stalled_total{flow=\"order\"} 1"), scrape);
    }

    @Test
    void repeatedRecordingsReuseOneMeter() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        for (int i = 0; i < 5; i++) {
            metrics.increment("dedup_evictions", Map.of("store", "a"));
        }
        assertEquals(5.0, registry.get("dedup_evictions").counter().count());
        assertEquals(1, registry.getMeters().size());
    }
    @Test
    void aNullTagValueIsRecordedAsNoneAsANullTopicOrReasonIs() {
        // A pattern counter's tag value can be null (a message without a key, a route not named): it threw out of
        // increment (a guarded recorder logged it and the count was lost), where every other meter records "none".
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        Map<String, String> tags = new java.util.HashMap<>();
        tags.put("topic", "orders");
        tags.put("route", null);

        metrics.increment("unroutable", tags);
        metrics.increment("unroutable", Map.of("topic", "orders", "route", "none"));
        metrics.eventDeadLettered("orders", null, "handler-failed");

        assertEquals(2.0, registry.get("unroutable").tags("topic", "orders", "route", "none").counter().count(),
                "a null value and \"none\" are one series, as for the bus's meters");
        assertEquals(1.0, registry.get("events.dead.lettered").tags("group", "none").counter().count());
    }

    @Test
    void aNullLatencyOrDurationIsCountedWithoutATimerSampleAsTheInMemoryRecorderCountsIt() {
        // A null latency threw a bare NullPointerException out of Timer.record after the counter had grown (the
        // in-memory recorder's sample window threw the same way): a value the caller could not measure, like a null
        // topic it could not name, so the event or saga is counted and its timer gets no sample, in both recorders.
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();

        for (io.streamsaga.metrics.MetricsRecorder recorder : java.util.List.of(metrics, inMemory)) {
            recorder.eventProcessed("orders", "billing", null);
            recorder.sagaFinished("trip", "completed", null);
        }

        assertEquals(1.0, registry.get("events.processed").tags("topic", "orders", "group", "billing").counter().count());
        assertNull(registry.find("event.latency").timer(), "no timer sample");
        assertEquals(1.0, registry.get("saga.finished").tags("saga", "trip", "outcome", "completed").counter().count());
        assertNull(registry.find("saga.duration").timer(), "no timer sample");
        assertEquals(1, inMemory.processed("orders", "billing"));
        assertEquals(java.util.List.of(), inMemory.latencies("orders", "billing"));
        assertEquals(1, inMemory.sagasFinished("trip", "completed"));
        assertEquals(java.util.List.of(), inMemory.sagaDurations("trip"));
    }

    @Test
    void aNullTagNameOrCounterNameIsRefusedNamingTheCounterAsTheInMemoryRecorderRefusesItAndNullTagsAreNone() {
        // A null tag name threw a bare NullPointerException out of TreeMap (no word of the counter), and null tags
        // threw too, where the in-memory recorder takes null tags as none: a tag cannot be recorded without its name
        // (skipping it would merge series silently), so both recorders refuse it, naming the counter.
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();
        Map<String, String> tags = new java.util.HashMap<>();
        tags.put("topic", "orders");
        tags.put(null, "x");

        for (io.streamsaga.metrics.MetricsRecorder recorder : java.util.List.of(metrics, inMemory)) {
            NullPointerException refused = assertThrows(NullPointerException.class, () -> recorder.increment("unroutable", tags));
            assertTrue(String.valueOf(refused.getMessage()).contains("counter unroutable has a tag with a null name"),
                    recorder + ": " + refused.getMessage());
            assertEquals("name", assertThrows(NullPointerException.class,
                    () -> recorder.increment(null, Map.of("topic", "orders"))).getMessage());
            recorder.increment("unroutable", null);
        }
        assertEquals(1.0, registry.get("unroutable").counter().count(), "null tags are none, one series without tags");
        assertEquals(1, inMemory.counter("unroutable", Map.of()));
        assertEquals(1, registry.getMeters().size(), "nothing registered for the refused calls");
    }
}
