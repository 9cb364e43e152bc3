package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.spi.RecordHandler;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/architectures.md (Lambda): "nothing is counted twice or missed". Delivery is at-least-once: after a
 * lost commit (a rebalance, a consumer restarted in the same process) the transport delivers records again
 * that the real-time side already folded; they must not be counted twice.
 */
class ServingLayerRedeliveryTest {
    record Sale(long amount) {
    }

    /** An in-memory transport that can deliver again every record a group handled, as after a lost commit. */
    static final class RedeliveringTransport extends ForwardingTransport {
        private final InMemoryTransport delegate;
        private final List<Runnable> redeliveries = new ArrayList<>();
        /** Groups whose every record is delivered twice in a row (the second as after a lost commit). */
        private volatile java.util.function.Predicate<String> twice = group -> false;

        RedeliveringTransport(InMemoryTransport delegate) {
            super(delegate);
            this.delegate = delegate;
        }

        /** Delivers again, in order, every record handled so far (the handler's committed offset was lost). */
        void redeliverEverything() {
            List.copyOf(redeliveries).forEach(Runnable::run);
        }

        @Override
        public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
            return delegate.subscribe(group, pattern, start, record -> {
                handler.handle(record);
                if (twice.test(group)) {
                    handler.handle(record);
                }
                redeliveries.add(() -> {
                    try {
                        handler.handle(record);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                });
            });
        }

        @Override
        public String name() {
            return "redelivering-" + delegate.name();
        }
    }

    @Test
    void realtimeEventsDeliveredAgainAfterALostCommitAreCountedOnce() {
        InMemoryTransport memory = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        RedeliveringTransport transport = new RedeliveringTransport(memory);
        try (EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
             ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                     .view(() -> 0L, (total, sale) -> total + sale.amount())
                     .merge(Long::sum)
                     .build().start()) {
            bus.publish("sales", "k", new Sale(10));
            bus.publish("sales", "k", new Sale(5));
            memory.drainAll();
            assertEquals(15L, layer.query());

            transport.redeliverEverything();

            assertEquals(15L, layer.query(), "a redelivered event must not be counted twice");
            assertEquals(2, layer.uncoveredEvents());
        } finally {
            memory.close();
        }
    }

    @Test
    void aBatchRecomputeWhoseReplayIsDeliveredARecordAgainCountsItOnce() {
        InMemoryTransport memory = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        RedeliveringTransport transport = new RedeliveringTransport(memory);
        try (EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
             ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                     .view(() -> 0L, (total, sale) -> total + sale.amount())
                     .merge(Long::sum)
                     .build().start()) {
            bus.publish("sales", "k", new Sale(10));
            bus.publish("sales", "k", new Sale(5));
            memory.drainAll();
            transport.twice = group -> group.startsWith("sales.batch-");

            java.util.concurrent.CompletableFuture<BatchView<Long>> batch = layer.recomputeBatch().toCompletableFuture();
            memory.drainAll();

            assertEquals(15L, batch.join().view(), "a record the batch replay was delivered twice is folded once");
            assertEquals(15L, layer.query());
        } finally {
            memory.close();
        }
    }
}
