package io.streamsaga.benchmarks;

import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.time.Scheduler;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What {@link FlowTracker#observe} costs where it used to grow with the tracker's state, the messages handed to it
 * on the calling thread (no transport delivery):
 *
 * <ul>
 *   <li>{@code longCausationChain}: one operation follows a whole instance of {@code chainLength} events, each
 *       caused by the one before (a payment retried again and again under one correlation id), on a fresh tracker.
 *       Each event used to sort the instance's steps again walking every causation chain at each comparison
 *       (cubic in the length).</li>
 *   <li>{@code causesArrivingInReverse}: the same instance, its events handed over last first, so that each is the
 *       cause of every step seen before it (its topic lagging behind those of its effects), then one query of it.
 *       Each such cause used to work out every step's key again and sort the steps (quadratic in the length).</li>
 *   <li>{@code flowFinishingBesideUnfinishedInstances}: one operation is a flow that starts and finishes, beside
 *       {@code unfinished} instances that never do (kept), with {@code maxFinishedInstances(100)}, so at steady
 *       state each finishing flow has the tracker forget one. Forgetting used to walk past every unfinished
 *       instance.</li>
 * </ul>
 *
 * The bus's scheduler drops the deadline checks: the deadlines are not what is measured, and the checks of millions
 * of operations would otherwise pile up on it.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FlowTrackerBenchmark {
    static final FlowDefinition FLOW = FlowDefinition.builder("order")
            .event("order-created", "Order", "Inventory")
            .event("inventory-reserved", "Inventory", "Payment")
            .event("payment-failed", "Payment", "Order")
            .event("payment-processed", "Payment")
            .succeedsOn("payment-processed")
            .failsOn("payment-failed")
            .deadline(Duration.ofMinutes(5))
            .build();
    static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    /** A scheduler whose tasks never run: the benchmark's trackers schedule deadline checks it need not keep. */
    static final class DroppingScheduler implements Scheduler {
        private final Clock clock = Clock.fixed(T0, ZoneOffset.UTC);

        @Override
        public Clock clock() {
            return clock;
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return () -> { };
        }

        @Override
        public void sleep(Duration delay) {
        }

        @Override
        public void close() {
        }
    }

    static Message event(String type, String id, String causationId, String correlationId, Instant at) {
        Message.Builder builder = Message.builder(type).type(type).payload(Map.of()).id(id).timestamp(at)
                .header(MessageHeaders.CORRELATION_ID, correlationId);
        return (causationId == null ? builder : builder.header(MessageHeaders.CAUSATION_ID, causationId)).build();
    }

    @State(Scope.Thread)
    public static class Chain {
        @Param({"1000", "5000"})
        int chainLength;
        InMemoryTransport transport;
        EventBus bus;
        Message[] events;

        @Setup(Level.Trial)
        public void setUp() {
            transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
            bus = EventBus.builder(transport).scheduler(new DroppingScheduler()).build();
            events = new Message[chainLength];
            events[0] = event("order-created", "m0", null, "c", T0);
            for (int i = 1; i < chainLength - 1; i++) {
                events[i] = event("inventory-reserved", "m" + i, "m" + (i - 1), "c", T0.plusMillis(i));
            }
            events[chainLength - 1] = event("payment-processed", "m" + (chainLength - 1), "m" + (chainLength - 2), "c",
                    T0.plusMillis(chainLength));
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            bus.close();
            transport.close();
        }
    }

    @Benchmark
    public int longCausationChain(Chain chain) {
        try (FlowTracker tracker = FlowTracker.builder(chain.bus, FLOW).build()) {
            for (Message event : chain.events) {
                tracker.observe(event);
            }
            return tracker.where("c").orElseThrow().steps().size();
        }
    }

    @Benchmark
    public int causesArrivingInReverse(Chain chain) {
        try (FlowTracker tracker = FlowTracker.builder(chain.bus, FLOW).build()) {
            for (int i = chain.events.length - 1; i >= 0; i--) {
                tracker.observe(chain.events[i]);
            }
            return tracker.where("c").orElseThrow().steps().size();
        }
    }

    @State(Scope.Thread)
    public static class Busy {
        @Param({"0", "50000"})
        int unfinished;
        InMemoryTransport transport;
        EventBus bus;
        FlowTracker tracker;
        long sequence;

        @Setup(Level.Trial)
        public void setUp() {
            transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
            bus = EventBus.builder(transport).scheduler(new DroppingScheduler()).build();
            tracker = FlowTracker.builder(bus, FLOW).maxFinishedInstances(100).build();
            for (int i = 0; i < unfinished; i++) {
                tracker.observe(event("order-created", "u" + i, null, "unfinished-" + i, T0));
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            tracker.close();
            bus.close();
            transport.close();
        }
    }

    @Benchmark
    public boolean flowFinishingBesideUnfinishedInstances(Busy busy) {
        long n = busy.sequence++;
        busy.tracker.observe(event("order-created", "a" + n, null, "f" + n, T0));
        return busy.tracker.observe(event("payment-processed", "b" + n, "a" + n, "f" + n, T0.plusMillis(1)));
    }
}
