package io.streamsaga.samples.microservices;

import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.message.Message;
import io.streamsaga.samples.microservices.EventDrivenMicroservicesSample.Outcome;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventDrivenMicroservicesSampleTest {

    @Test
    void everyServiceReactsToEveryOrderAndAnalyticsCountsBothTopics() {
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        Outcome outcome = EventDrivenMicroservicesSample.run(new PrintStream(printed, true, StandardCharsets.UTF_8));

        assertEquals(3, outcome.ordersCounted());
        assertEquals(3, outcome.paymentsCounted());
        assertEquals(25_00 + 1_250_00 + 99_90, outcome.revenue());
        assertEquals(3, count(outcome, "[payment]"));
        assertEquals(3, count(outcome, "[inventory]"));
        assertEquals(3, count(outcome, "[notification]"));
        assertEquals(6, count(outcome, "[analytics]"));
        assertTrue(outcome.timeline().contains("[payment]      declined pay-order-2 for order-2"), outcome.timeline().toString());

        assertEquals(3, outcome.metrics().processed("order-created", "payment-service"));
        assertEquals(3, outcome.metrics().processed("order-created", "inventory-service"));
        assertEquals(3, outcome.metrics().processed("payment-processed", "analytics-service"));
        assertEquals(2, outcome.metrics().counter("payments_total", Map.of("status", "success")));
        assertEquals(1, outcome.metrics().counter("payments_total", Map.of("status", "declined")));
        assertEquals(0, outcome.metrics().failed("order-created", "payment-service"));
        // Each order's amount observed, as the source's metrics.observe('order_amount', data.amount).
        InMemoryMetrics.Observations amounts = outcome.metrics().observations("order_amount", Map.of());
        assertEquals(3, amounts.count());
        assertEquals(1_250_00, amounts.max());
        assertEquals(List.of(25_00.0, 99_90.0, 1_250_00.0), amounts.values().stream().sorted().toList());

        // Each payment is correlated with, and caused by, its order's message.
        for (Message payment : outcome.paymentMessages()) {
            Message order = outcome.orderMessages().stream()
                    .filter(m -> m.key().equals(payment.key())).findFirst().orElseThrow();
            assertEquals(order.id(), payment.causationId().orElseThrow());
            assertEquals(order.correlationId().orElseThrow(), payment.correlationId().orElseThrow());
        }
        String output = printed.toString(StandardCharsets.UTF_8);
        assertTrue(output.contains("events_processed_total{topic=order-created,group=analytics-service} 3"), output);
        assertTrue(output.contains("order_amount_sum{} 137490"), output);
    }

    private static long count(Outcome outcome, String prefix) {
        return outcome.timeline().stream().filter(line -> line.startsWith(prefix)).count();
    }
}
