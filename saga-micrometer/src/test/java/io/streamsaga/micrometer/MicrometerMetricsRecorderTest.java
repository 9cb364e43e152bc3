package io.streamsaga.micrometer;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
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
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    @Test
    void observedValuesGoToOneDistributionSummaryPerNameAndTagsNamedAndTaggedAsTheCountersAre() {
        // The source's metrics.observe('order_amount', data.amount): before, the recorder had no such call and the
        // samples kept the amounts as a running sum in their own logs.
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        Map<String, String> noCurrency = new java.util.HashMap<>();
        noCurrency.put("currency", null);

        metrics.observe("order_amount", 25_00, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 1_250_00, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 99_90, Map.of("currency", "EUR"));
        metrics.observe("order_amount", 0, noCurrency);
        metrics.observe("order_amount", 5, Map.of("currency", "none"));
        metrics.observe("payload_bytes", 512, null);

        io.micrometer.core.instrument.DistributionSummary eur =
                registry.get("order_amount").tags("currency", "EUR").summary();
        assertEquals(3, eur.count());
        assertEquals(25_00 + 1_250_00 + 99_90, eur.totalAmount());
        assertEquals(1_250_00, eur.max());
        assertEquals(2, registry.get("order_amount").tags("currency", "none").summary().count(),
                "a null tag value and \"none\" are one series, as for a counter");
        assertEquals(1, registry.get("payload_bytes").summary().count(), "null tags are none");
        assertEquals(3, registry.getMeters().size(), "one meter per name and tags, reused");
    }

    @Test
    void anObservedDistributionScrapesAsCountSumAndMaxWithoutBucketsUnlessAMeterFilterAsksForThem() {
        // The summary published Micrometer's default percentile histogram, "as the timers do": but a timer's default
        // range is 1 ms to 30 s (69 buckets), a summary's 1 to Long.MAX_VALUE in no unit, 276 buckets, each a series of
        // its own per tag set, for values (an amount, a size) whose range only the application knows. As Micrometer
        // itself, a summary now publishes none unless a MeterFilter asks, with the buckets the application chooses.
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        registry.config().meterFilter(new MeterFilter() {
            @Override
            public DistributionStatisticConfig configure(Meter.Id id, DistributionStatisticConfig config) {
                return !id.getName().equals("order_amount") ? config
                        : DistributionStatisticConfig.builder().serviceLevelObjectives(50_00, 500_00).build().merge(config);
            }
        });
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);

        metrics.observe("payload_bytes", 512, Map.of("topic", "orders"));
        metrics.observe("payload_bytes", 2048, Map.of("topic", "orders"));
        metrics.observe("order_amount", 25_00, Map.of());
        metrics.observe("order_amount", 99_90, Map.of());

        String scrape = registry.scrape();
        assertTrue(scrape.contains("payload_bytes_count{topic=\"orders\"} 2"), scrape);
        assertTrue(scrape.contains("payload_bytes_sum{topic=\"orders\"} 2560"), scrape);
        assertTrue(scrape.contains("payload_bytes_max{topic=\"orders\"} 2048"), scrape);
        assertFalse(scrape.contains("payload_bytes_bucket"), scrape);
        assertEquals(List.of("order_amount_bucket{le=\"5000.0\"} 1", "order_amount_bucket{le=\"50000.0\"} 2",
                        "order_amount_bucket{le=\"+Inf\"} 2"),
                scrape.lines().filter(line -> line.startsWith("order_amount_bucket")).toList(), scrape);
    }

    @Test
    void aNaNInfiniteOrNegativeObservedValueIsRefusedByBothRecordersQuotingItAndRecordsNothing() {
        // Micrometer's DistributionSummary drops a negative value or NaN without a word and keeps an infinity in its
        // sum and maximum for good: both recorders refuse the three alike, before anything is registered, and a
        // guarded recorder (as the library uses every recorder) logs the refusal and goes on.
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();

        for (io.streamsaga.metrics.MetricsRecorder recorder : java.util.List.of(metrics, inMemory)) {
            for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -1}) {
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                        () -> recorder.observe("order_amount", bad, Map.of("currency", "EUR")));
                assertEquals("a value of distribution order_amount must be finite and 0 or more, but was " + bad,
                        refused.getMessage(), recorder.toString());
                io.streamsaga.metrics.MetricsRecorder.guarded(recorder).observe("order_amount", bad, Map.of("currency", "EUR"));
            }
        }
        assertNull(registry.find("order_amount").summary(), "nothing registered for the refused values");
        assertEquals(0, inMemory.observations("order_amount", Map.of("currency", "EUR")).count());
    }

    @Test
    void aNullDistributionNameOrTagNameIsRefusedByBothRecordersAsForACounterAndNullTagsAreNone() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();
        Map<String, String> tags = new java.util.HashMap<>();
        tags.put("currency", "EUR");
        tags.put(null, "x");

        for (io.streamsaga.metrics.MetricsRecorder recorder : java.util.List.of(metrics, inMemory)) {
            NullPointerException refused = assertThrows(NullPointerException.class, () -> recorder.observe("order_amount", 1, tags));
            assertTrue(String.valueOf(refused.getMessage()).contains("distribution order_amount has a tag with a null name"),
                    recorder + ": " + refused.getMessage());
            assertEquals("name", assertThrows(NullPointerException.class,
                    () -> recorder.observe(null, 1, Map.of("currency", "EUR"))).getMessage());
            io.streamsaga.metrics.MetricsRecorder.guarded(recorder).observe(null, 1, Map.of("currency", "EUR"));
            recorder.observe("order_amount", 1, null);
        }
        assertEquals(1, registry.get("order_amount").summary().count(), "null tags are none, one series without tags");
        assertEquals(1, inMemory.observations("order_amount", Map.of()).count());
        assertEquals(1, registry.getMeters().size(), "nothing registered for the refused calls");
    }

    @Test
    void aCounterAndADistributionOfOneNameAreRefusedByBothRecordersWhicheverComesFirstAndWhateverTheirTags() {
        // A registry keeps one meter type per name: with the same tags Micrometer threw its own IllegalArgumentException
        // at each call, with other tags a Prometheus registry took the second meter and left it out of every scrape (one
        // WARN per virtual machine, then debug), while the in-memory recorder took both: a test passed where production
        // lost the values. Both recorders now refuse the second kind of a name, alike, and keep recording the first.
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();

        for (io.streamsaga.metrics.MetricsRecorder recorder : java.util.List.of(metrics, inMemory)) {
            recorder.increment("orders", Map.of("region", "eu"));
            recorder.observe("order_amount", 25, Map.of("currency", "EUR"));
            for (Map<String, String> tags : java.util.List.of(Map.of("region", "eu"), Map.<String, String>of())) {
                assertEquals("distribution orders cannot be recorded: counter orders has the name orders already"
                                + " (as Prometheus shows it; a registry keeps one meter to a name)",
                        assertThrows(IllegalArgumentException.class, () -> recorder.observe("orders", 1, tags)).getMessage(),
                        recorder + " " + tags);
            }
            for (Map<String, String> tags : java.util.List.of(Map.of("currency", "EUR"), Map.<String, String>of())) {
                assertEquals("counter order_amount cannot be recorded: distribution order_amount has the name order_amount"
                                + " already (as Prometheus shows it; a registry keeps one meter to a name)",
                        assertThrows(IllegalArgumentException.class, () -> recorder.increment("order_amount", tags)).getMessage(),
                        recorder + " " + tags);
            }
            io.streamsaga.metrics.MetricsRecorder.guarded(recorder).observe("orders", 1, Map.of()); // logged, not thrown
            recorder.increment("orders", Map.of("region", "us"));
            recorder.observe("order_amount", 75, Map.of());
        }
        String scrape = registry.scrape();
        assertTrue(scrape.contains("orders_total{region=\"us\"} 1"), scrape);
        assertTrue(scrape.contains("order_amount_count 1"), scrape);
        assertFalse(scrape.contains("orders_count"), scrape);
        assertEquals(1, inMemory.counter("orders", Map.of("region", "us")));
        assertEquals(1, inMemory.observations("order_amount", Map.of()).count());
        assertEquals(io.streamsaga.inmemory.InMemoryMetrics.Observations.EMPTY, inMemory.observations("orders", Map.of()));
        assertEquals(0, inMemory.counter("order_amount", Map.of()));
        inMemory.reset();
        assertThrows(IllegalArgumentException.class, () -> inMemory.observe("orders", 1, Map.of()),
                "a name keeps its kind across reset, as a registry keeps its meters");
    }

    @Test
    void aNameThatPrometheusShowsAsALibraryMetersOrAnotherNamesIsRefusedByBothRecordersSoNoMeterLeavesTheScrape() {
        // A Prometheus registry takes a meter whose Prometheus name another meter has and leaves whichever came second
        // out of every scrape, saying so once per process: an application's observe("events_processed") before the bus's
        // first delivery took the library's events_processed_total out of the scrape, and observe("flow_stalled") beside
        // the counter flow_stalled_total was never scraped, where the in-memory recorder kept both.
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();
        String rule = " already (as Prometheus shows it; a registry keeps one meter to a name)";

        for (io.streamsaga.metrics.MetricsRecorder recorder : List.of(metrics, inMemory)) {
            assertEquals("distribution events_processed cannot be recorded: the library's counter events.processed has the"
                            + " name events_processed" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.observe("events_processed", 1, Map.of())).getMessage(),
                    recorder.toString());
            assertEquals("distribution saga_duration_seconds cannot be recorded: the library's timer saga.duration has the"
                            + " name saga_duration_seconds" + rule,
                    assertThrows(IllegalArgumentException.class,
                            () -> recorder.observe("saga_duration_seconds", 1, Map.of("saga", "trip"))).getMessage(),
                    recorder.toString());
            assertEquals("counter saga.started cannot be recorded: the library's counter saga.started has the name"
                            + " saga_started" + rule,
                    assertThrows(IllegalArgumentException.class,
                            () -> recorder.increment("saga.started", Map.of("saga", "trip"))).getMessage(),
                    recorder.toString());
            recorder.increment("flow_stalled_total", Map.of("flow", "order"));
            assertEquals("distribution flow_stalled cannot be recorded: counter flow_stalled_total has the name flow_stalled" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.observe("flow_stalled", 1, Map.of())).getMessage(),
                    recorder.toString());
            assertEquals("counter flow-stalled cannot be recorded: counter flow_stalled_total has the name flow_stalled" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.increment("flow-stalled", Map.of())).getMessage(),
                    recorder.toString());
            recorder.eventProcessed("orders", "billing", Duration.ofMillis(3));
            recorder.sagaFinished("trip", "completed", Duration.ofSeconds(1));
        }
        String scrape = registry.scrape();
        assertTrue(scrape.contains("events_processed_total{group=\"billing\",topic=\"orders\"} 1"), scrape);
        assertTrue(scrape.contains("saga_duration_seconds_count{outcome=\"completed\",saga=\"trip\"} 1"), scrape);
        assertTrue(scrape.contains("flow_stalled_total{flow=\"order\"} 1"), scrape);
        assertEquals(1, inMemory.processed("orders", "billing"));
        assertEquals(io.streamsaga.inmemory.InMemoryMetrics.Observations.EMPTY, inMemory.observations("events_processed", Map.of()));
        assertEquals(0, inMemory.counter("saga.started", Map.of("saga", "trip")));
    }

    @Test
    void aNameThatADistributionsMaximumHasInPrometheusIsRefusedByBothRecordersSoTheScrapeDoesNotFail() {
        // A distribution's maximum is a gauge of its own, <name>_max, which a Prometheus registry takes beside a counter
        // or distribution of that Prometheus name and then fails every scrape on ("orders_max: conflicting metric types:
        // CounterSnapshot and GaugeSnapshot"), whichever came first, the library's timers' maxima too: every meter of the
        // registry left the scrape. Samples of other names are no clash: a distribution's orders_count and orders_sum are
        // samples of the family orders, a counter orders_count's sample is orders_count_total, and the scrape has both.
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MicrometerMetricsRecorder metrics = new MicrometerMetricsRecorder(registry);
        io.streamsaga.inmemory.InMemoryMetrics inMemory = new io.streamsaga.inmemory.InMemoryMetrics();
        String rule = " already (as Prometheus shows it; a registry keeps one meter to a name)";

        for (io.streamsaga.metrics.MetricsRecorder recorder : List.of(metrics, inMemory)) {
            recorder.observe("orders", 3, Map.of());
            assertEquals("counter orders_max cannot be recorded: distribution orders has the name orders_max" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.increment("orders_max", Map.of())).getMessage(),
                    recorder.toString());
            assertEquals("distribution orders.max cannot be recorded: distribution orders has the name orders_max" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.observe("orders.max", 1, Map.of())).getMessage(),
                    recorder.toString());
            recorder.increment("refunds_max_total", Map.of());
            assertEquals("distribution refunds cannot be recorded: counter refunds_max_total has the name refunds_max" + rule,
                    assertThrows(IllegalArgumentException.class, () -> recorder.observe("refunds", 1, Map.of())).getMessage(),
                    recorder.toString());
            recorder.increment("refunds", Map.of()); // the refused distribution claimed no name
            assertEquals("counter event_latency_seconds_max cannot be recorded: the library's timer event.latency has the"
                            + " name event_latency_seconds_max" + rule,
                    assertThrows(IllegalArgumentException.class,
                            () -> recorder.increment("event_latency_seconds_max", Map.of())).getMessage(),
                    recorder.toString());
            recorder.increment("orders_count", Map.of());
            recorder.eventProcessed("orders", "billing", Duration.ofMillis(3));
        }
        String scrape = registry.scrape();
        assertTrue(scrape.contains("orders_count 1\n"), scrape);
        assertTrue(scrape.contains("orders_max 3.0"), scrape);
        assertTrue(scrape.contains("orders_count_total 1.0"), scrape);
        assertTrue(scrape.contains("refunds_total 1.0"), scrape);
        assertTrue(scrape.contains("events_processed_total{group=\"billing\",topic=\"orders\"} 1"), scrape);
        assertEquals(1, inMemory.counter("orders_count", Map.of()));
        assertEquals(1, inMemory.observations("orders", Map.of()).count());
    }
}
