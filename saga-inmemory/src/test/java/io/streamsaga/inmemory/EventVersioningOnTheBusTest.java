package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An old service still publishing v1 and a new one handling v2: the upcaster runs before the handler. */
class EventVersioningOnTheBusTest {
    record OrderCreatedV1(String orderId, long amount) {
    }

    record OrderCreatedV2(String orderId, long amount, String currency) {
    }

    @ParameterizedTest(name = "serializePayloads={0}")
    @ValueSource(booleans = {false, true})
    void aV2HandlerReceivesV1EventsWithCurrencyUsd(boolean serialize) {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
                .serializePayloads(serialize).build();
        EventBus legacy = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreatedV1.class).build()).build();
        EventBus current = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 2, OrderCreatedV2.class)
                        .upcaster("order-created", 1, v1 -> v1.put("currency", "USD"))
                        .build())
                .build();
        List<OrderCreatedV2> handled = new CopyOnWriteArrayList<>();
        current.subscribe("billing", "order-created", OrderCreatedV2.class, (event, ctx) -> handled.add(event));

        legacy.publish("order-created", "o-1", new OrderCreatedV1("o-1", 100));
        current.publish("order-created", "o-2", new OrderCreatedV2("o-2", 200, "EUR"));
        transport.drainAll();

        assertEquals(List.of(new OrderCreatedV2("o-1", 100, "USD"), new OrderCreatedV2("o-2", 200, "EUR")),
                handled.stream().sorted((a, b) -> a.orderId().compareTo(b.orderId())).toList());
    }

    /** The service at v2: its upcaster sets the currency of a v1 payload, and must run over v1 data only. */
    private static EventBus current(InMemoryTransport transport) {
        return EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 2, OrderCreatedV2.class)
                        .upcaster("order-created", 1, v1 -> v1.put("currency", "USD"))
                        .build())
                .build();
    }

    private static EventBus legacy(InMemoryTransport transport) {
        return EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreatedV1.class).build()).build();
    }

    /**
     * A dead letter of a v1 record, redriven after the class moved to v2, is handled as v2: the redrive sends the stored
     * record as it is (its type and version those of its bytes or object), not through the check of
     * {@code publish(Message)} that refuses a registered payload under another version.
     */
    @ParameterizedTest(name = "serializePayloads={0}")
    @ValueSource(booleans = {false, true})
    void aV1RecordDeadLetteredByAV2HandlerIsRedrivenAndHandledAsV2(boolean serialize) throws Exception {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
                .serializePayloads(serialize).build();
        try (EventBus legacy = legacy(transport); EventBus current = current(transport)) {
            AtomicBoolean broken = new AtomicBoolean(true);
            List<OrderCreatedV2> handled = new CopyOnWriteArrayList<>();
            current.subscribe("billing", "order-created", OrderCreatedV2.class,
                    SubscriptionOptions.fromEarliest().withRetryPolicy(RetryPolicy.NONE), (event, ctx) -> {
                        if (broken.get()) {
                            throw new IllegalStateException("bug");
                        }
                        handled.add(event);
                    });
            legacy.publish("order-created", "o-1", new OrderCreatedV1("o-1", 100)).toCompletableFuture().join();
            transport.drainAll();
            assertEquals(1, transport.messages("order-created" + MessageHeaders.DEAD_LETTER_SUFFIX).size());

            broken.set(false);
            CompletableFuture<DeadLetterRedrive.Report> finished = DeadLetterRedrive
                    .builder(current, "order-created" + MessageHeaders.DEAD_LETTER_SUFFIX).build().start().finished()
                    .toCompletableFuture();
            await().atMost(Duration.ofSeconds(30)).pollInSameThread().until(() -> {
                transport.drainAll();
                return finished.isDone();
            });
            transport.drainAll();
            assertEquals(1, finished.join().redriven());
            assertEquals(List.of(new OrderCreatedV2("o-1", 100, "USD")), handled);
        }
    }

    /**
     * A v2 handler's message of a v1 record carries the record's version (1) and the upcast v2 payload: forwarded as it
     * came, its consumers would run the v1 upcasters again over v2 data (here turning EUR into USD on a byte transport),
     * so {@code publish(Message)} refuses it naming the version to give it; forwarded as v2, it is read as it is.
     */
    @ParameterizedTest(name = "serializePayloads={0}")
    @ValueSource(booleans = {false, true})
    void aV1RecordForwardedAsItCameByAV2HandlerIsRefusedAndForwardedAsV2IsReadAsItIs(boolean serialize) {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
                .serializePayloads(serialize).build();
        try (EventBus legacy = legacy(transport); EventBus current = current(transport)) {
            List<Throwable> refused = new CopyOnWriteArrayList<>();
            current.subscribe("router", "order-created", OrderCreatedV2.class, (event, ctx) -> {
                Message corrected = ctx.message().toBuilder().payload(new OrderCreatedV2(event.orderId(),
                        event.amount(), "EUR")).build();
                refused.add(assertThrows(CompletionException.class, () -> current.publish(corrected.withTopic("audit"))
                        .toCompletableFuture().join()).getCause());
                current.publish(corrected.toBuilder().version(2).build().withTopic("audit")).toCompletableFuture().join();
            });
            List<OrderCreatedV2> audited = new CopyOnWriteArrayList<>();
            current.subscribe("auditor", "audit", OrderCreatedV2.class, (event, ctx) -> audited.add(event));

            legacy.publish("order-created", "o-1", new OrderCreatedV1("o-1", 100)).toCompletableFuture().join();
            transport.drainAll();

            assertEquals(1, refused.size());
            ConfigurationException refusal = assertInstanceOf(ConfigurationException.class, refused.get(0));
            assertTrue(refusal.getMessage().contains("version 1") && refusal.getMessage().contains(".version(2)"),
                    refusal.getMessage());
            assertEquals(List.of(new OrderCreatedV2("o-1", 100, "EUR")), audited);
        }
    }
}
