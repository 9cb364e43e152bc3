package io.streamsaga.bus;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A handler of a class the bus's registry lacks can take no message: the codec binds only registered classes, so
 * every message was dead-lettered as undecodable, from the first one on, while the subscription itself was taken
 * without a word (an adopter who annotated a record with {@code @EventType} and forgot to register it found the
 * orders in {@code order-created.DLT}). The bus now refuses such a subscription, and an {@code @EventPattern} method of
 * such a class, with a {@link ConfigurationException} naming the class and the call that registers it, before
 * anything is subscribed; {@code Message}, JSON-tree and registered classes are taken as before.
 */
class HandlerOfAnUnregisteredClassTest {
    @EventType("order-created")
    record OrderCreated(String orderId) { }

    @EventType("order-shipped")
    record OrderShipped(String orderId) { }

    private final RecordingTransport transport = new RecordingTransport();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register(OrderCreated.class).build()).build();

    @Test
    void aHandlerOfAClassTheRegistryLacksIsRefusedNamingTheCallThatRegistersItAndNothingIsSubscribed() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.subscribe("shipping", "order-shipped", OrderShipped.class, (shipped, context) -> { }));

        assertTrue(e.getMessage().startsWith("group 'shipping' cannot handle 'order-shipped' as a class the bus's codec"
                + " cannot decode to, every message would be dead-lettered: event class " + OrderShipped.class.getName()
                + " (@EventType(\"order-shipped\"), version 1) is not registered"), e.getMessage());
        assertTrue(e.getMessage().contains("TypeRegistry.builder().register(OrderShipped.class)"), e.getMessage());
        assertTrue(transport.registrations.isEmpty(), "nothing subscribed");
    }

    public static final class ShippingService {
        @EventPattern("order-created")
        public void onCreated(OrderCreated created) {
        }

        @EventPattern("order-shipped")
        public void onShipped(OrderShipped shipped) {
        }
    }

    @Test
    void anEventPatternMethodOfAClassTheRegistryLacksIsRefusedBeforeAnyMethodIsSubscribed() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("shipping", new ShippingService()));

        assertTrue(e.getMessage().startsWith("group 'shipping' cannot handle 'order-shipped' as a class"), e.getMessage());
        assertTrue(e.getMessage().contains(OrderShipped.class.getName() + " (@EventType(\"order-shipped\"), version 1)"
                + " is not registered"), e.getMessage());
        assertTrue(transport.registrations.isEmpty(), "nothing subscribed");
    }

    @Test
    void handlersOfMessagesJsonTreesAndRegisteredClassesAreTakenAsBefore() {
        bus.subscribe("audit", "*", Message.class, (message, context) -> { });
        bus.subscribe("trees", "order-created", JsonNode.class, (tree, context) -> { });
        bus.subscribe("objects", "order-created", ObjectNode.class, (tree, context) -> { });
        bus.subscribe("billing", "order-created", OrderCreated.class, (created, context) -> { });

        assertEquals(4, transport.registrations.size());
    }
}
