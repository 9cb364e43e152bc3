package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link ServingLayer}: "never counts an event twice". Installing a batch view refolds the real-time events it does
 * not cover; a fold that threw there left the new batch view installed beside the old real-time view, which still
 * held the events the batch now covers: they were counted twice. The refold now runs before anything changes.
 */
class ServingLayerFailedRefoldTest {
    record Sale(long amount) {
    }

    @Test
    void aBatchInstallWhoseRefoldThrowsLeavesTheViewsAsTheyWereInsteadOfCountingEventsTwice() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        AtomicBoolean refusing = new AtomicBoolean(false);
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> {
                    if (refusing.get()) {
                        throw new IllegalStateException("the fold's rates service is down");
                    }
                    return total + sale.amount();
                })
                .merge(Long::sum)
                .build().start();
        bus.publish("sales", "k", new Sale(10));
        bus.publish("sales", "k", new Sale(5));
        transport.drainAll();
        assertEquals(new ServingLayer.Answer<>(15L, Map.of(0, 2L)), layer.answer());

        refusing.set(true); // the batch below covers the first sale: the second is refolded, and that throws
        BatchView<Long> batch = new BatchView<>(10L, Map.of(0, 1L), bus.scheduler().clock().instant());
        IllegalStateException refused = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> layer.installBatch(batch));
        assertEquals("the fold's rates service is down", refused.getMessage());
        assertEquals(new ServingLayer.Answer<>(15L, Map.of(0, 2L)), layer.answer(), "was 25: the first sale twice");
        assertEquals(2, layer.uncoveredEvents());

        refusing.set(false);
        layer.installBatch(batch);
        assertEquals(new ServingLayer.Answer<>(15L, Map.of(0, 2L)), layer.answer());
        assertEquals(1, layer.uncoveredEvents());
    }
}
