package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * A recompute whose layer closed while its replay was starting closes that replay itself. It did so holding the
 * layer's lock, which every query and the real-time handler take, and a replay's close waits for its consumer threads
 * and for a check of committed offsets in progress (on a broker an Admin request): queries waited as long.
 */
class ServingLayerRecomputeClosedAsItStartsTest {
    private static final Duration RECHECK = Duration.ofMillis(100);

    record Sale(long amount) {
    }

    /**
     * A virtual scheduler that runs {@link #onFirstRecheck} on the thread arming the replay's first 100 ms check, and
     * tells when one of those checks is cancelled (the replay closing). Its closeWait is long, so that a close waiting
     * for the check waits for it, not for a timeout.
     */
    private static final class WatchedScheduler implements Scheduler {
        final VirtualScheduler delegate = new VirtualScheduler();
        final CountDownLatch recheckCancelled = new CountDownLatch(1);
        volatile Runnable onFirstRecheck;

        @Override
        public Clock clock() {
            return delegate.clock();
        }

        @Override
        public Duration closeWait() {
            return Duration.ofSeconds(60);
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            Cancellable scheduled = delegate.schedule(delay, task);
            if (!RECHECK.equals(delay)) {
                return scheduled;
            }
            Runnable hook = onFirstRecheck;
            onFirstRecheck = null;
            if (hook != null) {
                hook.run();
            }
            return () -> {
                recheckCancelled.countDown();
                scheduled.cancel();
            };
        }

        @Override
        public void sleep(Duration delay) {
            delegate.sleep(delay);
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    @Test
    void queriesAreAnsweredWhileARecomputeClosedAsItStartedWaitsForItsReplaysCommittedOffsetCheck() throws Exception {
        WatchedScheduler scheduler = new WatchedScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        Transport watched = mock(Transport.class, delegatesTo(transport));
        AtomicBoolean gated = new AtomicBoolean();
        CountDownLatch reading = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        doAnswer(call -> {
            if (gated.getAndSet(false)) { // the replay's check, on the thread advancing the clock: a slow Admin request
                reading.countDown();
                release.await(60, TimeUnit.SECONDS);
            }
            return transport.committedOffsets(call.getArgument(0), call.getArgument(1));
        }).when(watched).committedOffsets(any(), any());
        EventBus bus = EventBus.builder(watched).scheduler(scheduler)
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build();
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join(); // not drained: the replay stays short of it
        Thread ticking = new Thread(() -> scheduler.delegate.advance(RECHECK.multipliedBy(2))); // the second run reads
        try {
            // As the replay arms its check, the layer closes, and the check starts reading before recomputeBatch()
            // sees the close and closes the replay.
            scheduler.onFirstRecheck = () -> {
                layer.close();
                gated.set(true);
                ticking.start();
                try {
                    assertTrue(reading.await(30, TimeUnit.SECONDS), "the check reads committed offsets");
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            };
            CompletableFuture<CompletionStage<BatchView<Long>>> recomputing = CompletableFuture.supplyAsync(layer::recomputeBatch);
            assertTrue(scheduler.recheckCancelled.await(30, TimeUnit.SECONDS), "the recompute closes its replay");

            try { // the close waits for the check, which goes on until released
                assertEquals(0L, CompletableFuture.supplyAsync(layer::query).get(10, TimeUnit.SECONDS));
            } catch (TimeoutException e) {
                fail("a query waited for the recompute closing its replay under the layer's lock");
            }
            release.countDown();

            ExecutionException failed = assertThrows(ExecutionException.class,
                    () -> recomputing.get(30, TimeUnit.SECONDS).toCompletableFuture().get(30, TimeUnit.SECONDS));
            assertInstanceOf(CancellationException.class, failed.getCause());
            ticking.join();
        } finally {
            release.countDown();
            bus.close();
            transport.close();
        }
    }
}
