package io.streamsaga.benchmarks;

import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.message.Message;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Per-message cost of the {@link IdempotentConsumer} wrapper over the in-memory deduplication store,
 * against the same handler unwrapped. Each operation hands one delivery to the handler on the calling
 * thread (no bus, no transport), so the difference between the rows is the wrapper: key building, a
 * lease owner id, claim and complete in the store, and (at steady state) evicting the oldest key.
 *
 * <ul>
 *   <li>{@code unwrapped}: the plain handler, with a fresh message per operation.</li>
 *   <li>{@code wrappedNewMessage}: a fresh message id per operation (the common path: claim, run,
 *       complete); the store is capped at {@code maxEntries} keys, so each operation also evicts one.</li>
 *   <li>{@code wrappedDuplicate}: the same message again and again (the skip path: one lookup).</li>
 * </ul>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class IdempotentConsumerBenchmark {

    /** The small event of the benchmark. */
    public record PaymentRequested(String orderId, long cents) {
    }

    @State(Scope.Thread)
    public static class Handlers {
        InMemoryTransport transport;
        EventBus bus;
        EventHandler<PaymentRequested> plain;
        EventHandler<PaymentRequested> wrapped;
        PaymentRequested event;
        Message duplicate;
        long sequence;
        final Map<String, String> headers = Map.of();
        final Instant timestamp = Instant.parse("2026-01-01T00:00:00Z");
        /** How many done keys the store keeps; at steady state every new message evicts the oldest. */
        @Param({"1000", "100000"})
        int maxEntries;

        @Setup
        public void setUp(Blackhole blackhole) {
            transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
            bus = EventBus.builder(transport)
                    .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class).build())
                    .build();
            InMemoryDeduplicationStore store = InMemoryDeduplicationStore.builder()
                    .window(Duration.ofDays(7)).maxEntries(maxEntries).build();
            IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
            plain = (event, context) -> blackhole.consume(event);
            wrapped = consumer.wrap(plain);
            event = new PaymentRequested("o-1", 4_200);
            duplicate = message("duplicate");
        }

        Message message(String id) {
            return new Message(id, "payment-requested", "o-1", "payment-requested", 1, event, headers, timestamp);
        }

        Message next() {
            return message("m-" + sequence++);
        }

        @TearDown
        public void tearDown() {
            bus.close();
            transport.close();
        }
    }

    @Benchmark
    public void unwrapped(Handlers state) throws Exception {
        Message message = state.next();
        state.plain.handle(state.event, new DeliveryContext(message, "payments", 0, 0, 1));
    }

    @Benchmark
    public void wrappedNewMessage(Handlers state) throws Exception {
        Message message = state.next();
        state.wrapped.handle(state.event, new DeliveryContext(message, "payments", 0, 0, 1));
    }

    @Benchmark
    public void wrappedDuplicate(Handlers state) throws Exception {
        state.wrapped.handle(state.event, new DeliveryContext(state.duplicate, "payments", 0, 0, 1));
    }
}
