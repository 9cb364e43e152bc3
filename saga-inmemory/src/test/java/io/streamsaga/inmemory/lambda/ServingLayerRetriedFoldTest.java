package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * ServingLayer: "merges a batch view with a real-time view, and never counts an event twice". A fold that
 * fails once and succeeds on the bus's retry must leave the event counted once, also after a batch view
 * is installed and the real-time view is refolded.
 */
class ServingLayerRetriedFoldTest {
    record Sale(long amount) {
    }

    @Test
    void anEventWhoseFoldWasRetriedIsCountedOnceAfterTheRealtimeViewIsRefolded() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        AtomicBoolean failOnce = new AtomicBoolean(true);
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> {
                    if (failOnce.getAndSet(false)) {
                        throw new IllegalStateException("transient");
                    }
                    return total + sale.amount();
                })
                .merge(Long::sum)
                .build().start();

        bus.publish("sales", "k", new Sale(10));
        transport.drainAll();
        assertEquals(10L, layer.query());

        // a batch view computed elsewhere that covers nothing yet: the real-time view is refolded
        layer.installBatch(new BatchView<>(0L, Map.of(0, 0L), bus.scheduler().clock().instant()));

        assertEquals(10L, layer.query(), "the retried event must be counted once");
    }

    @Test
    void anEventWhoseFoldAlwaysFailsIsDeadLetteredAndDoesNotBreakTheNextBatchInstall() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> {
                    if (sale.amount() < 0) {
                        throw new IllegalArgumentException("negative sale");
                    }
                    return total + sale.amount();
                })
                .merge(Long::sum)
                .build().start();

        bus.publish("sales", "k", new Sale(-1));
        bus.publish("sales", "k", new Sale(10));
        transport.drainAll();
        assertEquals(1, transport.messages("sales.DLT").size());
        assertEquals(10L, layer.query());

        layer.installBatch(new BatchView<>(0L, Map.of(0, 0L), bus.scheduler().clock().instant()));

        assertEquals(10L, layer.query());
    }
}
