package io.streamsaga.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ServingLayer.close() stops the layer: a batch recompute still running is stopped too (its replay closed) and
 * its stage fails with a CancellationException, rather than go on reading the log and stay pending for a
 * caller waiting on it; a recompute asked of a closed layer fails the same way.
 */
class ServingLayerCloseTest {
    record Sale(long amount) {
    }

    @Test
    void closingStopsARunningBatchRecomputeAndFailsItsStage() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build().start();
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();

        CompletableFuture<BatchView<Long>> recompute = layer.recomputeBatch().toCompletableFuture();
        assertTrue(!recompute.isDone(), "the replay waits for delivery");
        layer.close();

        assertTrue(recompute.isCompletedExceptionally(), "close() ends the running recompute");
        CompletionException failed = assertThrows(CompletionException.class, recompute::join);
        assertInstanceOf(CancellationException.class, failed.getCause());
        transport.drainAll();
        assertEquals(0L, layer.batchView().view(), "the stopped recompute installs nothing");
        CompletableFuture<BatchView<Long>> afterClose = layer.recomputeBatch().toCompletableFuture();
        assertTrue(afterClose.isCompletedExceptionally(), "a closed layer recomputes nothing");
        assertThrows(CancellationException.class, afterClose::join);
        bus.close();
        transport.close();
    }
}
