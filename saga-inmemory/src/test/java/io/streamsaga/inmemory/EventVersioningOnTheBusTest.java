package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
