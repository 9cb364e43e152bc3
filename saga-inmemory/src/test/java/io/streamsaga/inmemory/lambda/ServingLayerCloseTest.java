package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * ServingLayer.close() stops the layer: a batch recompute still running is stopped too (its replay closed) and
 * its stage fails with a CancellationException, rather than go on reading the log and stay pending for a
 * caller waiting on it; a recompute asked of a closed layer fails the same way. It closes the real-time
 * subscription without holding the layer's lock, which the real-time handler takes.
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

    @Test
    void closeDoesNotBlockTheRealTimeHandlerOfTheSubscriptionItCloses() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build();
        AtomicReference<Thread> worker = new AtomicReference<>();
        AtomicBoolean handled = new AtomicBoolean();
        AtomicReference<Runnable> beforeClose = new AtomicReference<>(() -> { });
        AtomicReference<Boolean> workerRunningWhenClosed = new AtomicReference<>();
        Transport watched = mock(Transport.class, delegatesTo(transport));
        doAnswer(call -> {
            RecordHandler handler = call.getArgument(3);
            Subscription subscription = transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    record -> {
                        worker.set(Thread.currentThread());
                        handler.handle(record);
                        handled.set(true);
                    });
            return new Subscription() {
                @Override
                public String group() {
                    return subscription.group();
                }

                @Override
                public TopicPattern pattern() {
                    return subscription.pattern();
                }

                @Override
                public boolean isActive() {
                    return subscription.isActive();
                }

                @Override
                public void close() {
                    beforeClose.get().run();
                    subscription.close();
                    workerRunningWhenClosed.set(worker.get() != null && worker.get().isAlive());
                }
            };
        }).when(watched).subscribe(any(), any(), any(), any());
        EventBus bus = EventBus.builder(watched).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build().start();
        // As close() closes the real-time subscription, a sale reaches its handler.
        beforeClose.set(() -> {
            bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();
            await().atMost(Duration.ofSeconds(30)).until(() -> handled.get()
                    || (worker.get() != null && worker.get().getState() == Thread.State.BLOCKED));
        });
        layer.close();

        assertFalse(workerRunningWhenClosed.get(), "the real-time handler waited for the layer's lock, held by close()"
                + " while the subscription's close waited for that handler (and gave up after 10 s)");
        assertEquals(new ServingLayer.Answer<>(5L, java.util.Map.of(0, 1L)), layer.answer(), "the sale in hand is counted");
        bus.close();
        transport.close();
    }
    @Test
    void aClosedLayerRefusesToInstallABatchView() {
        // A closed layer took a batch view installed from outside and changed its view after close() had returned,
        // where a recompute of a closed layer installs nothing.
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build().start();
        layer.close();

        assertEquals("serving layer 'sales' is closed: cannot install the batch view covering {0=3}",
                assertThrows(io.streamsaga.ConfigurationException.class,
                        () -> layer.installBatch(new BatchView<>(7L, java.util.Map.of(0, 3L), java.time.Instant.EPOCH))).getMessage());
        assertEquals(0L, layer.query(), "the closed layer's view is unchanged");
        bus.close();
        transport.close();
    }
}
