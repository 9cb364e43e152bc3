package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ServingLayer#close()} stops any batch recompute still running. One whose replay had just caught up, its
 * result not installed yet, was no longer among the recomputes close() stops: it installed its batch view after
 * close() had returned, so the closed layer's view still changed, and its stage succeeded. It now fails with a
 * {@link CancellationException} and installs nothing, as a recompute stopped earlier does.
 */
class ServingLayerCloseAsARecomputeCatchesUpTest {
    record Sale(long amount) {
    }

    /** A scheduler whose clock, once gated, stops the replay's thread at its next reading of the time. */
    private static final class GatedScheduler implements Scheduler {
        final VirtualScheduler delegate = new VirtualScheduler();
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        volatile Thread gated;

        @Override
        public Clock clock() {
            return new Clock() {
                @Override
                public ZoneId getZone() {
                    return delegate.clock().getZone();
                }

                @Override
                public Clock withZone(ZoneId zone) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public Instant instant() {
                    if (Thread.currentThread() == gated) {
                        gated = null;
                        entered.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    return delegate.clock().instant();
                }
            };
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return delegate.schedule(delay, task);
        }

        @Override
        public void sleep(Duration delay) throws InterruptedException {
            delegate.sleep(delay);
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    @Test
    void aRecomputeCaughtUpButNotYetInstalledWhenTheLayerClosesInstallsNothingAndFails() throws Exception {
        GatedScheduler scheduler = new GatedScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(scheduler)
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build().start();
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();
        transport.drainAll();
        CompletableFuture<BatchView<Long>> recompute = layer.recomputeBatch().toCompletableFuture();

        // The replay catches up on this thread, which stops as its result is about to be installed.
        Thread replaying = new Thread(transport::drainAll);
        scheduler.gated = replaying;
        replaying.start();
        assertTrue(scheduler.entered.await(30, TimeUnit.SECONDS), "the replay caught up");
        layer.close();
        scheduler.release.countDown();
        replaying.join();

        assertEquals(0L, layer.batchView().view(), "the closed layer's batch view changed after close() returned");
        assertEquals(5L, layer.query());
        CompletionException failed = assertThrows(CompletionException.class, recompute::join);
        assertInstanceOf(CancellationException.class, failed.getCause());
        bus.close();
        transport.close();
    }
}
