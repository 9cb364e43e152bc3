package io.streamsaga.benchmarks;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Publish-to-handler throughput of the in-memory bus (1 producer, 1 consumer group, 8 partitions, small
 * events the handler receives decoded), against the floor of a plain {@link ArrayBlockingQueue} hand-off
 * of the same objects to one consumer thread.
 *
 * <p>Each invocation publishes {@value #BATCH} events and waits until the consumer has handled all of
 * them, so the score is end-to-end throughput (events per second), not how fast a log can be appended to.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class BusThroughputBenchmark {
    static final int BATCH = 4_096;
    private static final int PARTITIONS = 8;

    /** The small event of the benchmark. */
    public record PriceChanged(String sku, long cents) {
    }

    /** Events and keys made once, so producers do not measure their own allocation. */
    @State(Scope.Benchmark)
    public static class Events {
        final PriceChanged[] events = new PriceChanged[BATCH];
        final String[] keys = new String[BATCH];

        @Setup
        public void create() {
            for (int i = 0; i < BATCH; i++) {
                keys[i] = "sku-" + (i % 64);
                events[i] = new PriceChanged(keys[i], i);
            }
        }
    }

    /** Padding before the consumer's counter fields (superclass fields are laid out first). */
    abstract static class CounterPadBefore {
        long p00, p01, p02, p03, p04, p05, p06, p07;
    }

    /** The fields the consumer writes on every event. */
    abstract static class CounterFields extends CounterPadBefore {
        volatile long handled;
        long checksum;
    }

    /**
     * The consumer's side: what it handled so far, written by its one thread only. Padded on both sides:
     * the consumer writes it on every event, and unpadded it could share a cache line with whatever was
     * allocated next to it (in the bus states, the transport the producer reads on every publish), which
     * would charge the harness's false sharing to the code under test, in some forks and not others.
     */
    static final class Counter extends CounterFields {
        long p10, p11, p12, p13, p14, p15, p16, p17;

        void add(long value) {
            checksum += value;
            handled = handled + 1; // single writer: no atomic read-modify-write needed
        }

        void awaitAtLeast(long target) {
            while (handled < target) {
                Thread.onSpinWait();
            }
        }
    }

    /** Common set-up of the two bus variants. */
    public abstract static class BusState {
        InMemoryTransport transport;
        EventBus bus;
        final Counter counter = new Counter();
        long published;

        abstract boolean serialize();

        @Setup(Level.Trial)
        public void start() {
            // Bounded retention: the log of a long run would otherwise hold every event ever published. A
            // batch is handled completely before the next starts, so nothing unread is ever dropped.
            transport = InMemoryTransport.builder().partitions(PARTITIONS).maxRecordsPerPartition(BATCH)
                    .serializePayloads(serialize()).build();
            bus = EventBus.builder(transport)
                    .types(TypeRegistry.builder().register("price-changed", 1, PriceChanged.class).build())
                    .build();
            bus.subscribe("bench", "price-changed", PriceChanged.class, SubscriptionOptions.defaults(),
                    (event, ctx) -> counter.add(event.cents()));
        }

        @TearDown(Level.Trial)
        public void stop() {
            bus.close();
            transport.close();
        }
    }

    /** The bus handing the published objects over (the in-memory default). */
    @State(Scope.Benchmark)
    public static class ObjectBus extends BusState {
        @Override
        boolean serialize() {
            return false;
        }
    }

    /** The bus encoding to JSON bytes and decoding again, as over a network. */
    @State(Scope.Benchmark)
    public static class SerializingBus extends BusState {
        @Override
        boolean serialize() {
            return true;
        }
    }

    /**
     * The bus's own work per event without a thread hand-off: publish a batch, then deliver it on the same
     * thread ({@code DeliveryMode.MANUAL}). Less sensitive to a loaded machine than the two-thread runs.
     */
    @State(Scope.Benchmark)
    public static class SameThreadBus {
        InMemoryTransport transport;
        EventBus bus;
        final Counter counter = new Counter();

        @Setup(Level.Trial)
        public void start() {
            transport = InMemoryTransport.builder().partitions(PARTITIONS).maxRecordsPerPartition(BATCH)
                    .deliveryMode(DeliveryMode.MANUAL).build();
            bus = EventBus.builder(transport)
                    .types(TypeRegistry.builder().register("price-changed", 1, PriceChanged.class).build())
                    .build();
            bus.subscribe("bench", "price-changed", PriceChanged.class, SubscriptionOptions.defaults(),
                    (event, ctx) -> counter.add(event.cents()));
        }

        @TearDown(Level.Trial)
        public void stop() {
            bus.close();
            transport.close();
        }
    }

    /** The floor: the same objects through an ArrayBlockingQueue to one consumer thread. */
    @State(Scope.Benchmark)
    public static class QueueHandOff {
        final ArrayBlockingQueue<PriceChanged> queue = new ArrayBlockingQueue<>(1024);
        final Counter counter = new Counter();
        long published;
        Thread consumer;

        @Setup(Level.Trial)
        public void start() {
            consumer = new Thread(() -> {
                try {
                    while (true) {
                        counter.add(queue.take().cents());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "queue-consumer");
            consumer.setDaemon(true);
            consumer.start();
        }

        @TearDown(Level.Trial)
        public void stop() throws InterruptedException {
            consumer.interrupt();
            consumer.join();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long busObjectHandOff(ObjectBus state, Events events) {
        return publishBatch(state, events);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long busSerializedJson(SerializingBus state, Events events) {
        return publishBatch(state, events);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long arrayBlockingQueueHandOff(QueueHandOff state, Events events) throws InterruptedException {
        for (int i = 0; i < BATCH; i++) {
            state.queue.put(events.events[i]);
        }
        state.published += BATCH;
        state.counter.awaitAtLeast(state.published);
        return state.counter.checksum;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long busSameThreadPublishThenDrain(SameThreadBus state, Events events) {
        EventBus bus = state.bus;
        for (int i = 0; i < BATCH; i++) {
            bus.publish("price-changed", events.keys[i], events.events[i]);
        }
        state.transport.drainAll();
        return state.counter.checksum;
    }

    private static long publishBatch(BusState state, Events events) {
        EventBus bus = state.bus;
        for (int i = 0; i < BATCH; i++) {
            bus.publish("price-changed", events.keys[i], events.events[i]);
        }
        state.published += BATCH;
        state.counter.awaitAtLeast(state.published);
        return state.counter.checksum;
    }
}
