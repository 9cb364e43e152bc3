package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InMemoryMetricsTest {
    record OrderCreated(String orderId) {
    }

    @Test
    void theBusReportsProcessedFailedAndDeadLetteredPerTopicAndGroup() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        InMemoryMetrics metrics = new InMemoryMetrics();
        EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).build())
                .scheduler(new VirtualScheduler())
                .metrics(metrics)
                .build();
        AtomicInteger flaky = new AtomicInteger();
        bus.subscribe("analytics", "order-created", OrderCreated.class, (event, ctx) -> { });
        bus.subscribe("payment", "order-created", OrderCreated.class, (event, ctx) -> {
            if (event.orderId().equals("flaky") && flaky.getAndIncrement() == 0) {
                throw new IllegalStateException("gateway timeout"); // fails once, then succeeds
            }
            if (event.orderId().equals("declined")) {
                throw new IllegalArgumentException("card declined"); // fails every attempt
            }
        });

        bus.publish("order-created", "a", new OrderCreated("ok"));
        bus.publish("order-created", "b", new OrderCreated("flaky"));
        bus.publish("order-created", "c", new OrderCreated("declined"));
        transport.send(Message.builder("order-created").key("d").type("order-created")
                .payload("not json".getBytes(StandardCharsets.UTF_8)).build());
        transport.drainAll();

        assertEquals(3, metrics.processed("order-created", "analytics"));
        assertEquals(2, metrics.processed("order-created", "payment"));
        assertEquals(5, metrics.processed("order-created"));
        assertEquals(1, metrics.failed("order-created", "payment", "IllegalStateException"));
        assertEquals(3, metrics.failed("order-created", "payment", "IllegalArgumentException"));
        assertEquals(4, metrics.failed("order-created", "payment"));
        assertEquals(0, metrics.failed("order-created", "analytics"));
        assertEquals(Map.of("IllegalArgumentException", 3L, "IllegalStateException", 1L), metrics.failuresByErrorType());
        assertEquals(1, metrics.deadLettered("order-created", "payment", "handler-failed"));
        assertEquals(1, metrics.deadLettered("order-created", "payment", "undecodable"));
        assertEquals(1, metrics.deadLettered("order-created", "analytics", "undecodable"));
        assertEquals(Map.of("handler-failed", 1L, "undecodable", 2L), metrics.deadLettersByReason());
        assertEquals(3, metrics.latencies("order-created", "analytics").size());
        assertTrue(metrics.latencies("order-created", "payment").stream().noneMatch(Duration::isNegative));
        String report = metrics.report();
        assertTrue(report.contains("events_processed_total{topic=order-created,group=payment} 2"), report);
        assertTrue(report.contains("events_failed_total{topic=order-created,group=payment,error_type=IllegalArgumentException} 3"), report);
    }

    @Test
    void sagaCountersAndNamedCountersAddUp() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        metrics.sagaStarted("order-saga");
        metrics.sagaStarted("order-saga");
        metrics.sagaFinished("order-saga", "completed", Duration.ofMillis(12));
        metrics.sagaFinished("order-saga", "compensated", Duration.ofMillis(30));
        metrics.increment("dedup_evictions_total", Map.of("store", "memory"));
        metrics.increment("dedup_evictions_total", Map.of("store", "memory"));
        metrics.increment("dedup_evictions_total", Map.of("store", "jdbc"));
        metrics.increment("unroutable_total", null);

        assertEquals(2, metrics.sagasStarted("order-saga"));
        assertEquals(1, metrics.sagasFinished("order-saga", "completed"));
        assertEquals(1, metrics.sagasFinished("order-saga", "compensated"));
        assertEquals(0, metrics.sagasFinished("order-saga", "failed"));
        assertEquals(2, metrics.sagaDurations("order-saga").size());
        assertEquals(2, metrics.counter("dedup_evictions_total", Map.of("store", "memory")));
        assertEquals(3, metrics.counter("dedup_evictions_total"));
        assertEquals(1, metrics.counter("unroutable_total", Map.of()));

        metrics.reset();
        assertEquals(0, metrics.sagasStarted("order-saga"));
        assertEquals(0, metrics.counter("dedup_evictions_total"));
    }

    @Test
    void latencySamplesAreBoundedButCountersStayExact() {
        InMemoryMetrics metrics = new InMemoryMetrics(5);
        for (int i = 1; i <= 8; i++) {
            metrics.eventProcessed("t", "g", Duration.ofMillis(i));
        }
        assertEquals(8, metrics.processed("t", "g"));
        assertEquals(5, metrics.latencies("t", "g").size());
        assertEquals(Duration.ofMillis(4), metrics.latencies("t", "g").get(0), "the oldest samples go first");
        assertEquals(Duration.ofMillis(8), metrics.maxLatency("t", "g"));
        assertEquals("maxSamples must be 1 or more, but was 0",
                assertThrows(ConfigurationException.class, () -> new InMemoryMetrics(0)).getMessage());
    }

    @Test
    void aNullLatencyOrDurationIsCountedWithoutASampleAndTheSamplesAroundItStay() {
        // The sample window threw on a null latency after the event had been counted: a value the caller could not
        // measure is counted without a sample, as MicrometerMetricsRecorder records it
        InMemoryMetrics metrics = new InMemoryMetrics();

        metrics.eventProcessed("t", "g", Duration.ofMillis(1));
        metrics.eventProcessed("t", "g", null);
        metrics.sagaFinished("trip", "completed", null);

        assertEquals(2, metrics.processed("t", "g"));
        assertEquals(List.of(Duration.ofMillis(1)), metrics.latencies("t", "g"));
        assertEquals(1, metrics.sagasFinished("trip", "completed"));
        assertEquals(List.of(), metrics.sagaDurations("trip"));
    }

    @Test
    void aNullTopicGroupSagaOrTagValueIsRecordedAsNoneAsTheMicrometerRecorderRecordsIt() {
        // The in-memory recorder threw on a null tag value (Map.copyOf), a null topic or group and a null saga name,
        // and recorded a null error type, reason or outcome as "null", where MicrometerMetricsRecorder records every
        // null as "none": a test asserting on the in-memory recorder saw another count than production.
        InMemoryMetrics metrics = new InMemoryMetrics();
        Map<String, String> tags = new java.util.HashMap<>();
        tags.put("topic", "orders");
        tags.put("route", null);

        metrics.increment("unroutable", tags);
        metrics.increment("unroutable", Map.of("topic", "orders", "route", "none"));
        metrics.eventProcessed(null, null, Duration.ofMillis(1));
        metrics.eventFailed("orders", null, null);
        metrics.eventDeadLettered("orders", null, null);
        metrics.sagaStarted(null);
        metrics.sagaFinished(null, null, Duration.ofMillis(2));

        assertEquals(2, metrics.counter("unroutable", Map.of("topic", "orders", "route", "none")),
                "a null value and \"none\" are one series, as on Micrometer");
        assertEquals(2, metrics.counter("unroutable", tags), "read with the null value, the same series");
        assertEquals(1, metrics.processed("none", "none"));
        assertEquals(1, metrics.processed(null, null));
        assertEquals(1, metrics.failed("orders", "none", "none"));
        assertEquals(1, metrics.deadLettered("orders", null, "none"));
        assertEquals(1, metrics.sagasStarted("none"));
        assertEquals(1, metrics.sagasFinished(null, "none"));
        assertEquals(1, metrics.sagaDurations("none").size());
    }

    @Test
    void observedValuesAreCountedSummedAndKeptPerDistributionAndTags() {
        // The source's metrics.observe('order_amount', data.amount): a test reads what was observed, per tag set, with
        // the count, sum and maximum exact while the values kept are bounded as the latency samples are.
        InMemoryMetrics metrics = new InMemoryMetrics(2);
        metrics.observe("order_amount", 25_00, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 1_250_00, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 99_90, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 7.5, Map.of("currency", "USD"));
        Map<String, String> noCurrency = new java.util.HashMap<>();
        noCurrency.put("currency", null);
        metrics.observe("order_amount", 0, noCurrency);
        metrics.observe("payload_bytes", 512, null);

        InMemoryMetrics.Observations eur = metrics.observations("order_amount", Map.of("currency", "EUR"));
        assertEquals(3, eur.count());
        assertEquals(25_00 + 1_250_00 + 99_90, eur.sum());
        assertEquals(1_250_00, eur.max());
        assertEquals(List.of(1_250_00.0, 99_90.0), eur.values(), "the newest two kept, oldest first");
        assertEquals(new InMemoryMetrics.Observations(1, 7.5, 7.5, List.of(7.5)),
                metrics.observations("order_amount", Map.of("currency", "USD")));
        assertEquals(1, metrics.observations("order_amount", Map.of("currency", "none")).count(),
                "a null tag value is none, as for a counter");
        assertEquals(1, metrics.observations("payload_bytes", Map.of()).count(), "null tags are none");
        assertEquals(InMemoryMetrics.Observations.EMPTY, metrics.observations("order_amount", Map.of()),
                "another tag set, another series");
        List<String> report = metrics.report().lines().toList();
        assertTrue(report.contains("order_amount_count{currency=EUR} 3"), report.toString());
        assertTrue(report.contains("order_amount_sum{currency=EUR} 137490"), report.toString());
        assertTrue(report.contains("order_amount_max{currency=USD} 7.5"), report.toString());

        metrics.reset();
        assertEquals(InMemoryMetrics.Observations.EMPTY, metrics.observations("order_amount", Map.of("currency", "EUR")));
    }

    @Test
    void aValueThatIsNaNInfiniteOrNegativeIsRefusedQuotingItAndRecordsNothing() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        metrics.observe("order_amount", 10, Map.of());

        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -0.01}) {
            assertEquals("a value of distribution order_amount must be finite and 0 or more, but was " + bad,
                    assertThrows(IllegalArgumentException.class, () -> metrics.observe("order_amount", bad, Map.of())).getMessage());
        }
        assertEquals(new InMemoryMetrics.Observations(1, 10, 10, List.of(10.0)), metrics.observations("order_amount", Map.of()));
    }

    @Test
    void aNullDistributionNameOrTagNameIsRefusedNamingItAsForACounter() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        Map<String, String> tags = new java.util.HashMap<>();
        tags.put(null, "x");

        assertEquals("name", assertThrows(NullPointerException.class, () -> metrics.observe(null, 1, Map.of())).getMessage());
        assertEquals("distribution order_amount has a tag with a null name (tags {null=x})",
                assertThrows(NullPointerException.class, () -> metrics.observe("order_amount", 1, tags)).getMessage());
        assertEquals("", metrics.report(), "nothing recorded");
    }
}
