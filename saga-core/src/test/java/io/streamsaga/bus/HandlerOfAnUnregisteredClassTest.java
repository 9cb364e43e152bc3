package io.streamsaga.bus;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A handler of a class the bus's registry lacks can take no message: the codec binds only registered classes, so
 * every message was dead-lettered as undecodable, from the first one on, while the subscription itself was taken
 * without a word (an adopter who annotated a record with {@code @EventType} and forgot to register it found the
 * orders in {@code order-created.DLT}). The bus now refuses such a subscription, and an {@code @EventPattern} method of
 * such a class, with a {@link ConfigurationException} naming the class and the call that registers it, before
 * anything is subscribed; {@code Message}, JSON-tree and registered classes are taken as before, and so is any class
 * that the bus's own codec says it decodes to ({@link EventCodec#canDecodeTo}; one that does not say takes every class).
 * A handler of a JDK or generic type ({@code String}, {@code byte[]}, {@code Map}, {@code Object}) is told to take
 * {@code Message} or {@code JsonNode} and read the payload, not to register that type.
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

    record Untyped(String orderId) { }

    /** An application's codec that binds one class it has not registered, and says so. */
    static final class LenientCodec implements EventCodec {
        private final JsonEventCodec json = new JsonEventCodec(TypeRegistry.empty());

        @Override
        public TypeRegistry types() {
            return json.types();
        }

        @Override
        public byte[] encode(Object payload) {
            return json.encode(payload);
        }

        @Override
        public JsonNode toTree(Object payload) {
            return json.toTree(payload);
        }

        @Override
        public <T> T decode(Message message, Class<T> target) {
            return target == Untyped.class ? target.cast(new Untyped(message.key())) : json.decode(message, target);
        }

        @Override
        public boolean canDecodeTo(Class<?> target) {
            return target == Untyped.class || json.canDecodeTo(target);
        }
    }

    @Test
    void aHandlerOfAClassTheBussOwnCodecSaysItDecodesToIsTaken() {
        EventBus lenient = EventBus.builder(transport).codec(new LenientCodec()).build();

        lenient.subscribe("audit", "orders", Untyped.class, (order, context) -> { });

        assertEquals(1, transport.registrations.size());
        assertThrows(ConfigurationException.class,
                () -> lenient.subscribe("shipping", "order-shipped", OrderShipped.class, (shipped, context) -> { }));
    }

    /**
     * An application's codec written before {@link EventCodec#canDecodeTo} existed: it binds a class it has not
     * registered, and cannot say so. Its handlers were taken and got their events; the default must not refuse them.
     */
    static final class CodecWrittenBeforeCanDecodeTo implements EventCodec {
        private final JsonEventCodec json = new JsonEventCodec(TypeRegistry.empty());

        @Override
        public TypeRegistry types() {
            return json.types();
        }

        @Override
        public byte[] encode(Object payload) {
            return json.encode(payload);
        }

        @Override
        public JsonNode toTree(Object payload) {
            return json.toTree(payload);
        }

        @Override
        public <T> T decode(Message message, Class<T> target) {
            return target == Untyped.class ? target.cast(new Untyped(message.key())) : json.decode(message, target);
        }
    }

    @Test
    void aHandlerOfAnApplicationsCodecThatDoesNotOverrideCanDecodeToIsTakenAsBefore() {
        EventBus own = EventBus.builder(transport).codec(new CodecWrittenBeforeCanDecodeTo()).build();

        own.subscribe("audit", "orders", Untyped.class, (order, context) -> { });

        assertEquals(1, transport.registrations.size());
    }

    /**
     * A codec brings its own registry, so a {@code types(...)} given with it was dropped without a word (the codec
     * took precedence), and a handler of a class of that registry was then refused as unregistered.
     */
    @Test
    void aBusGivenBothACodecAndATypeRegistryIsRefusedAtBuildSayingWhichToKeep() {
        TypeRegistry types = TypeRegistry.builder().register(OrderShipped.class).build();
        for (EventBus.Builder both : List.of(EventBus.builder(transport).types(types).codec(new LenientCodec()),
                EventBus.builder(transport).codec(new LenientCodec()).types(types))) {
            ConfigurationException e = assertThrows(ConfigurationException.class, both::build);

            assertTrue(e.getMessage().startsWith("an EventBus takes a codec(...) or a types(...) registry for the default"
                    + " JSON codec, not both"), e.getMessage());
        }
    }

    @Test
    void handlersOfMessagesJsonTreesAndRegisteredClassesAreTakenAsBefore() {
        bus.subscribe("audit", "*", Message.class, (message, context) -> { });
        bus.subscribe("trees", "order-created", JsonNode.class, (tree, context) -> { });
        bus.subscribe("objects", "order-created", ObjectNode.class, (tree, context) -> { });
        bus.subscribe("billing", "order-created", OrderCreated.class, (created, context) -> { });

        assertEquals(4, transport.registrations.size());
    }

    @Test
    void aHandlerOfAJdkOrGenericTypeIsToldToTakeAMessageOrAJsonTreeNotToRegisterTheType() {
        for (Class<?> type : List.of(String.class, byte[].class, Map.class, Object.class)) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> bus.subscribe("audit", "order-created", type, (event, context) -> { }));

            assertTrue(e.getMessage().startsWith("group 'audit' cannot handle 'order-created' as a class the bus's codec"
                    + " cannot decode to, every message would be dead-lettered: " + type.getTypeName()
                    + " is not an event class the registry can bind; take Message (its payload()) or JsonNode (the payload"
                    + " as a JSON tree) and read the value from it"), e.getMessage());
            assertFalse(e.getMessage().contains("register"), e.getMessage());
        }
        ConfigurationException untyped = assertThrows(ConfigurationException.class,
                () -> bus.subscribe("audit", "orders", Untyped.class, (order, context) -> { }));
        assertTrue(untyped.getMessage().contains(Untyped.class.getName() + " is not registered; register it with"
                + " TypeRegistry.builder().register(type, version, Untyped.class)"), untyped.getMessage());
        assertTrue(transport.registrations.isEmpty(), "nothing subscribed");
    }
}
