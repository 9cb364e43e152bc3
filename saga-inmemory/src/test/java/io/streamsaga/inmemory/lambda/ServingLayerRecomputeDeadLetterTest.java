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

import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ServingLayer#recomputeBatch()} completes when the last event below its target is dead-lettered (its
 * fold throws): the replay counts a dead-lettered record as passed, so no later event is needed to finish it.
 */
class ServingLayerRecomputeDeadLetterTest {
    record Sale(long amount) {
    }

    @Test
    void recomputeBatchCompletesWhenTheLastEventBeforeTheTargetIsDeadLettered() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
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
        bus.publish("sales", "k", new Sale(10));
        bus.publish("sales", "k", new Sale(-1));
        transport.drainAll();

        CompletableFuture<BatchView<Long>> batch = layer.recomputeBatch().toCompletableFuture();
        transport.drainAll();

        assertTrue(batch.isDone(), "recomputeBatch() must complete once the replay reached its target");
        assertEquals(10L, batch.join().view());
    }
}
