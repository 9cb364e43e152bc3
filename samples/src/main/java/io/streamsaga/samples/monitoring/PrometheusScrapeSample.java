package io.streamsaga.samples.monitoring;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.micrometer.MicrometerMetricsRecorder;
import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.stream.Collectors;

/**
 * Monitoring: the bus records into Micrometer through {@link MicrometerMetricsRecorder}, and the sample
 * prints the Prometheus scrape text (events_processed_total, events_failed_total by error type,
 * event_latency_seconds histogram, events_dead_lettered_total, flow counters of a flow tracker).
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.monitoring.PrometheusScrapeSample}.
 */
public final class PrometheusScrapeSample {

    public record OrderCreated(String orderId, long amount) {
    }

    public record PaymentProcessed(String orderId) {
    }

    private PrometheusScrapeSample() {
    }

    /** Runs some traffic (one order fails payment every time) and returns the scrape text. */
    public static String run() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler clock = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class).build())
                .scheduler(clock)
                .metrics(new MicrometerMetricsRecorder(registry))
                .build();
             FlowTracker tracker = FlowTracker.builder(bus, FlowDefinition.builder("order")
                     .event("order-created", "OrderService", "PaymentService")
                     .event("payment-processed", "PaymentService")
                     .succeedsOn("payment-processed").deadline(Duration.ofSeconds(10)).build()).build().start()) {
            bus.subscribe("payment-service", "order-created", OrderCreated.class,
                    SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(3).build()), (event, ctx) -> {
                        if (event.amount() > 1000) {
                            throw new IllegalStateException("card declined");
                        }
                        bus.publish("payment-processed", event.orderId(), new PaymentProcessed(event.orderId()));
                    });
            for (int i = 1; i <= 5; i++) {
                bus.publish("order-created", "o-" + i, new OrderCreated("o-" + i, i == 5 ? 5000 : 100 * i));
            }
            transport.drainAll();
            clock.advance(Duration.ofSeconds(10)); // o-5 never got paid: the tracker reports it stalled
            return registry.scrape();
        } finally {
            transport.close();
            registry.close();
        }
    }

    public static void main(String[] args) {
        String scrape = run();
        // the latency histogram has many buckets; print the interesting lines
        System.out.println(scrape.lines()
                .filter(line -> !line.startsWith("event_latency_seconds_bucket") || line.contains("le=\"+Inf\""))
                .collect(Collectors.joining("\n")));
    }
}
