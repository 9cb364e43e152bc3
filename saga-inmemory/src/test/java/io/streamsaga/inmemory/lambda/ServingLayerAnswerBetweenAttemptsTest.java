package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link ServingLayer#answer()}: "the merged view together with the exact log position it covers: per partition,
 * every event below the offset and none above". The real-time side counted an event's offset as reached before
 * its fold ran: while the bus waited to retry a fold that failed, and for good once the event was dead-lettered,
 * an answer claimed a position covering an event its view did not hold. The offset now counts once the event is
 * in the view (or known to be there already).
 */
class ServingLayerAnswerBetweenAttemptsTest {
    record Sale(long amount) {
    }

    /** A virtual scheduler that takes an answer of the layer each time the bus waits between two attempts. */
    static final class Observing implements Scheduler {
        final VirtualScheduler time = new VirtualScheduler();
        final AtomicReference<ServingLayer<Sale, Long>> layer = new AtomicReference<>();
        final List<ServingLayer.Answer<Long>> betweenAttempts = new ArrayList<>();

        @Override
        public Clock clock() {
            return time.clock();
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return time.schedule(delay, task);
        }

        @Override
        public void sleep(Duration delay) {
            betweenAttempts.add(layer.get().answer()); // what a query on another thread sees meanwhile
            time.sleep(delay);
        }

        @Override
        public void close() {
            time.close();
        }
    }

    @Test
    void anAnswerTakenWhileAFailedFoldWaitsForItsRetryDoesNotClaimTheEventsPosition() {
        Observing scheduler = new Observing();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(scheduler)
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
        AtomicBoolean failOnce = new AtomicBoolean(false);
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> {
                    if (failOnce.getAndSet(false)) {
                        throw new IllegalStateException("transient");
                    }
                    return total + sale.amount();
                })
                .merge(Long::sum)
                .build().start();
        scheduler.layer.set(layer);

        bus.publish("sales", "k", new Sale(10));
        transport.drainAll();
        failOnce.set(true);
        bus.publish("sales", "k", new Sale(5));
        transport.drainAll();

        assertEquals(List.of(new ServingLayer.Answer<>(10L, Map.of(0, 1L))), scheduler.betweenAttempts,
                "between the attempts the view holds the first sale only, so its position is offset 1");
        assertEquals(new ServingLayer.Answer<>(15L, Map.of(0, 2L)), layer.answer());
    }

    @Test
    void aDeadLetteredEventsPositionIsPassedOnlyWithTheNextEventFolded() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(scheduler)
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
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
        transport.drainAll();
        assertEquals(1, transport.messages("sales.DLT").size());
        assertEquals(new ServingLayer.Answer<>(0L, Map.of()), layer.answer(), "offset 0 is not in the view");

        bus.publish("sales", "k", new Sale(10));
        transport.drainAll();
        assertEquals(new ServingLayer.Answer<>(10L, Map.of(0, 2L)), layer.answer());
    }
}
