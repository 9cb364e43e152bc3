package io.streamsaga.samples.monitoring;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

class PrometheusScrapeSampleTest {

    @Test
    void scrapeShowsProcessedFailedDeadLetteredLatencyAndFlowCounters() {
        String scrape = PrometheusScrapeSample.run();
        assertTrue(scrape.contains("events_processed_total{group=\"payment-service\",topic=\"order-created\"} 4"), scrape);
        assertTrue(scrape.contains("events_failed_total{error_type=\"IllegalStateException\",group=\"payment-service\",topic=\"order-created\"} 3"), scrape);
        assertTrue(scrape.contains("events_dead_lettered_total{group=\"payment-service\",reason=\"handler-failed\",topic=\"order-created\"} 1"), scrape);
        assertTrue(scrape.contains("event_latency_seconds_count{group=\"payment-service\",topic=\"order-created\"} 4"), scrape);
        assertTrue(scrape.contains("saga_started_total{saga=\"order\"} 5"), scrape);
        assertTrue(scrape.contains("saga_finished_total{outcome=\"completed\",saga=\"order\"} 4"), scrape);
        assertTrue(scrape.contains("saga_duration_seconds_count{outcome=\"completed\",saga=\"order\"} 4"), scrape);
        assertTrue(scrape.contains("flow_stalled_total{flow=\"order\"} 1"), scrape);
    }
}
