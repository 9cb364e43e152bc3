package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * {@link ServingLayer#recomputeBatch()} asked the transport whether its new group was unused (its consumer groups
 * and committed offsets: on a broker admin requests, up to the request timeout while offsets are pending in a
 * transaction) while holding the layer's lock, which every query and the real-time handler take: both waited as
 * long.
 */
class ServingLayerRecomputeOutsideItsLockTest {
    record Sale(long amount) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final CountDownLatch asking = new CountDownLatch(1);
    private final CountDownLatch answered = new CountDownLatch(1);
    private final Transport slowToAnswer = mock(Transport.class, delegatesTo(transport));
    private final EventBus bus;

    ServingLayerRecomputeOutsideItsLockTest() {
        doAnswer(call -> {
            asking.countDown();
            assertTrue(answered.await(60, TimeUnit.SECONDS)); // a broker's offset fetch
            return transport.committedOffsets(call.getArgument(0), call.getArgument(1));
        }).when(slowToAnswer).committedOffsets(any(), any());
        bus = EventBus.builder(slowToAnswer).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
    }

    @AfterEach
    void close() {
        answered.countDown();
        bus.close();
        transport.close();
    }

    @Test
    void queriesAreAnsweredWhileARecomputeAsksWhetherItsGroupIsUnused() throws Exception {
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build();
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();
        CompletableFuture<CompletionStage<BatchView<Long>>> recomputing = CompletableFuture.supplyAsync(layer::recomputeBatch);
        assertTrue(asking.await(30, TimeUnit.SECONDS));

        CompletableFuture<Long> query = CompletableFuture.supplyAsync(layer::query);
        assertEquals(0L, query.get(30, TimeUnit.SECONDS), "answered while the recompute waits for the transport");

        answered.countDown();
        CompletableFuture<BatchView<Long>> batch = recomputing.get(30, TimeUnit.SECONDS).toCompletableFuture();
        transport.drainAll();
        assertEquals(5L, batch.get(30, TimeUnit.SECONDS).view());
        assertEquals(5L, layer.query());
        layer.close();
    }
}
