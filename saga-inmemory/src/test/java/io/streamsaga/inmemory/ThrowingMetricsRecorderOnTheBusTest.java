package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/architecture.md, "Metrics": what a {@link MetricsRecorder} throws, an exception or an error, is logged and ignored, as
 * what a saga listener throws: a broken metrics registry never makes the bus handle a message again, dead-letter it,
 * or fail a pattern's call ({@code bus.metrics()} is the guarded recorder the patterns use).
 */
class ThrowingMetricsRecorderOnTheBusTest {
    record OrderCreated(String orderId) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build();

    /** Records each call, then throws what {@code thrown} makes. */
    private static MetricsRecorder broken(List<String> recorded, Supplier<? extends Throwable> thrown) {
        return new MetricsRecorder() {
            @Override
            public void eventProcessed(String topic, String group, Duration latency) {
                recorded.add("processed " + topic);
                sneakyThrow(thrown.get());
            }

            @Override
            public void eventFailed(String topic, String group, String errorType) {
                recorded.add("failed " + topic);
                sneakyThrow(thrown.get());
            }

            @Override
            public void eventDeadLettered(String topic, String group, String reason) {
                recorded.add("dead-lettered " + topic);
                sneakyThrow(thrown.get());
            }

            @Override
            public void increment(String name, Map<String, String> tags) {
                recorded.add(name);
                sneakyThrow(thrown.get());
            }
        };
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> void sneakyThrow(Throwable e) throws E {
        throw (E) e;
    }

    @Test
    void aHandledMessageStaysHandledOnceWhenTheRecorderThrowsAfterTheHandlerSucceeded() {
        for (Supplier<? extends Throwable> thrown : List.<Supplier<? extends Throwable>>of(
                () -> new IllegalStateException("the metrics registry is broken"),
                () -> new AssertionError("a bug in the recorder"),
                () -> new java.io.IOException("a checked one, sneaked"))) {
            InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
            List<String> recorded = new CopyOnWriteArrayList<>();
            EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                    .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                    .metrics(broken(recorded, thrown)).build();
            List<String> handled = new CopyOnWriteArrayList<>();
            bus.subscribe("shipping", "order-created", OrderCreated.class, (event, ctx) -> handled.add(event.orderId()));
            bus.publish("order-created", "k", new OrderCreated("o-1"));

            transport.drainAll();

            assertEquals(List.of("o-1"), handled, "handled once: " + thrown.get());
            assertEquals(List.of("processed order-created"), recorded);
            assertEquals(0, transport.messages("order-created.DLT").size());
            bus.close();
        }
    }

    @Test
    void aFailingMessageIsRetriedThenDeadLetteredAsWithoutMetricsWhenTheRecorderThrows() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        List<String> recorded = new CopyOnWriteArrayList<>();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .metrics(broken(recorded, () -> new IllegalStateException("the metrics registry is broken"))).build();
        List<String> attempts = new CopyOnWriteArrayList<>();
        bus.subscribe("shipping", "order-created", OrderCreated.class, (event, ctx) -> {
            attempts.add(event.orderId());
            throw new IllegalArgumentException("invalid order");
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));

        transport.drainAll();

        assertEquals(List.of("o-1", "o-1", "o-1"), attempts, "every attempt of the policy");
        assertEquals(List.of("failed order-created", "failed order-created", "failed order-created",
                "dead-lettered order-created"), recorded);
        assertEquals(1, transport.messages("order-created.DLT").size(), "dead-lettered once");
        bus.close();
    }
}
