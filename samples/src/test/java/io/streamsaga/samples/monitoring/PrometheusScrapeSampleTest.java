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
        assertTrue(scrape.contains("flow_finished_total{flow=\"order\",outcome=\"succeeded\"} 4"), scrape);
        assertTrue(scrape.contains("flow_stalled_total{flow=\"order\"} 1"), scrape);
    }
}
