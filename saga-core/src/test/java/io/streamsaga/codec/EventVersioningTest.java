package io.streamsaga.codec;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The source's OrderCreatedEvent v1 -> v2 (currency "USD"), a later v3, and what cannot be decoded. */
class EventVersioningTest {

    /** Version 1 as an old producer still publishes it. */
    record OrderCreatedV1(String orderId, long amount) {
    }

    /** Version 2: adds the currency. */
    record OrderCreatedV2(String orderId, long amount, String currency) {
    }

    /** Version 3: adds the sales channel. */
    record OrderCreatedV3(String orderId, long amount, String currency, String channel) {
    }

    /** The registry of a consumer on version 2: one upcaster. */
    private static TypeRegistry.Builder v2Registry() {
        return TypeRegistry.builder()
                .register("order-created", 2, OrderCreatedV2.class)
                .upcaster("order-created", 1, v1 -> v1.put("currency", "USD"));
    }

    /** Version 3 needs exactly one more upcaster on top of version 2's chain. */
    private static TypeRegistry v3Registry() {
        return TypeRegistry.builder()
                .register("order-created", 3, OrderCreatedV3.class)
                .upcaster("order-created", 1, v1 -> v1.put("currency", "USD"))
                .upcaster("order-created", 2, v2 -> v2.put("channel", "web"))
                .build();
    }

    private static Message json(String type, int version, String json) {
        return Message.builder("order-created").key("o-1").type(type).version(version)
                .payload(json.getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void aTypeIdADurableStoreCouldNotKeepIsRefusedWhereItIsRegistered() {
        // the JDBC outbox keeps the type id in 255 characters and refuses NUL and lone surrogates: such an id was
        // registered, and then every outbox append of the event failed, leaving a saga step that sends it stuck
        record Event(String id) {
        }
        String longest = "t".repeat(TypeRegistry.MAX_TYPE_LENGTH);
        assertEquals(longest, TypeRegistry.builder().register(longest, 1, Event.class).build().idOf(Event.class).type());
        ConfigurationException tooLong = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().register("t".repeat(256), 1, Event.class));
        assertEquals("event type must be at most 255 characters, but was '" + "t".repeat(64) + "...' (256 characters)",
                tooLong.getMessage());
        assertThrows(ConfigurationException.class, () -> TypeRegistry.builder().register("order\0", 1, Event.class));
        assertThrows(ConfigurationException.class, () -> TypeRegistry.builder().register("order-\uD800", 1, Event.class));
    }

    @Test
    void anUpcasterOfATypeIdThatCannotBeRegisteredIsRefusedAsTheRegistrationIs() {
        // register refused such an id but upcaster took it: an upcaster for a type no event can be registered as
        // (a typo'd or pasted id), kept silently and never used
        String longest = "t".repeat(TypeRegistry.MAX_TYPE_LENGTH);
        TypeRegistry.builder().upcaster(longest, 1, t -> t).build();
        ConfigurationException tooLong = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().upcaster("t".repeat(256), 1, t -> t));
        assertEquals("event type must be at most 255 characters, but was '" + "t".repeat(64) + "...' (256 characters)",
                tooLong.getMessage());
        ConfigurationException nul = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().upcaster("order\0", 1, t -> t));
        assertTrue(nul.getMessage().startsWith("event type must not contain the character U+0000"), nul.getMessage());
        ConfigurationException surrogate = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().upcaster("order-\uD800", 1, t -> t));
        assertTrue(surrogate.getMessage().startsWith("event type must not contain a lone surrogate"),
                surrogate.getMessage());
    }

    @Test
    void v1JsonIsUpcastToV2WithCurrencyDefaultingToUsd() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        OrderCreatedV2 event = codec.decode(json("order-created", 1, "{\"orderId\":\"o-1\",\"amount\":100}"),
                OrderCreatedV2.class);
        assertEquals(new OrderCreatedV2("o-1", 100, "USD"), event);
    }

    @Test
    void v2JsonKeepsItsOwnCurrency() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        OrderCreatedV2 event = codec.decode(
                json("order-created", 2, "{\"orderId\":\"o-1\",\"amount\":100,\"currency\":\"EUR\"}"), OrderCreatedV2.class);
        assertEquals(new OrderCreatedV2("o-1", 100, "EUR"), event);
    }

    @Test
    void aV1ObjectHandedOverInMemoryIsUpcastToo() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        Message inMemory = Message.builder("order-created").type("order-created").version(1)
                .payload(new OrderCreatedV1("o-2", 5)).build();
        assertEquals(new OrderCreatedV2("o-2", 5, "USD"), codec.decode(inMemory, OrderCreatedV2.class));
    }

    @Test
    void v3NeedsOnlyOneMoreUpcasterAndReadsEveryOlderVersion() {
        JsonEventCodec codec = new JsonEventCodec(v3Registry());
        assertEquals(new OrderCreatedV3("o-1", 100, "USD", "web"),
                codec.decode(json("order-created", 1, "{\"orderId\":\"o-1\",\"amount\":100}"), OrderCreatedV3.class));
        assertEquals(new OrderCreatedV3("o-1", 100, "EUR", "web"),
                codec.decode(json("order-created", 2, "{\"orderId\":\"o-1\",\"amount\":100,\"currency\":\"EUR\"}"),
                        OrderCreatedV3.class));
        assertEquals(new OrderCreatedV3("o-1", 100, "EUR", "app"),
                codec.decode(json("order-created", 3,
                        "{\"orderId\":\"o-1\",\"amount\":100,\"currency\":\"EUR\",\"channel\":\"app\"}"), OrderCreatedV3.class));
        assertEquals(3, v3Registry().latestVersion("order-created").orElseThrow());
    }

    @Test
    void jsonTreeHandlersSeeTheLatestVersion() {
        JsonEventCodec codec = new JsonEventCodec(v3Registry());
        JsonNode tree = codec.decode(json("order-created", 1, "{\"orderId\":\"o-1\",\"amount\":100}"), JsonNode.class);
        assertEquals("USD", tree.get("currency").asText());
        assertEquals("web", tree.get("channel").asText());
    }

    @Test
    void encodedEventsDecodeBackToEqualRecords() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        OrderCreatedV2 event = new OrderCreatedV2("o-3", 42, "VND");
        Message message = Message.builder("order-created").type("order-created").version(2)
                .payload(codec.encode(event)).build();
        assertEquals(event, codec.decode(message, OrderCreatedV2.class));
    }

    @Test
    void theSameObjectIsHandedOverWhenTypeAndVersionMatch() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        OrderCreatedV2 event = new OrderCreatedV2("o-4", 1, "USD");
        Message message = Message.builder("order-created").type("order-created").version(2).payload(event).build();
        assertSame(event, codec.decode(message, OrderCreatedV2.class));
    }

    @Test
    void malformedJsonRaisesADecodingExceptionSayingSo() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-created", 2, "{\"orderId\": oops"), OrderCreatedV2.class));
        assertTrue(e.getMessage().startsWith("malformed JSON payload"), e.getMessage());
        assertFalse(e.isRetriable());
    }

    @Test
    void aJsonArrayWhereAnObjectBelongsIsRejected() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-created", 2, "[1,2]"), OrderCreatedV2.class));
        assertTrue(e.getMessage().contains("must be a JSON object, but was ARRAY"), e.getMessage());
    }

    @Test
    void anUnknownTypeFromTheMessageIsQuotedBounded() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        String type = "t".repeat(10_000);
        String unknown = assertThrows(DecodingException.class,
                () -> codec.decode(json(type, 1, "{}"), OrderCreatedV2.class)).getMessage();
        String notATree = assertThrows(DecodingException.class,
                () -> codec.decode(json(type, 1, "[1]"), com.fasterxml.jackson.databind.node.ObjectNode.class)).getMessage();
        for (String message : new String[] {unknown, notATree}) {
            assertTrue(message.length() < 300 && message.contains("'" + "t".repeat(64) + "...' (10000 characters)"), message);
        }
    }

    @Test
    void anUnknownTypeRaisesADecodingExceptionNamingIt() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-shipped", 1, "{}"), OrderCreatedV2.class));
        assertEquals("unknown event type 'order-shipped' (v1); the handler expects order-created/v2", e.getMessage());
    }

    @Test
    void aVersionNewerThanTheHandlerKnowsRaisesADecodingException() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-created", 3, "{\"orderId\":\"o\"}"), OrderCreatedV2.class));
        assertEquals("event order-created has version 3, newer than version 2 that OrderCreatedV2 represents",
                e.getMessage());
    }

    @Test
    void anOldVersionWithNoUpcasterRaisesADecodingExceptionNamingTheMissingStep() {
        TypeRegistry registry = TypeRegistry.builder()
                .register("order-created", 3, OrderCreatedV3.class)
                .upcaster("order-created", 2, v2 -> v2.put("channel", "web"))
                .build();
        JsonEventCodec codec = new JsonEventCodec(registry);
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-created", 1, "{\"orderId\":\"o\"}"), OrderCreatedV3.class));
        assertEquals("no upcaster registered for order-created from version 1 to 2 (needed to read version 1 as version 3)",
                e.getMessage());
    }

    @Test
    void anUpcasterReturningNullIsReported() {
        TypeRegistry registry = TypeRegistry.builder()
                .register("order-created", 2, OrderCreatedV2.class)
                .upcaster("order-created", 1, v1 -> null)
                .build();
        DecodingException e = assertThrows(DecodingException.class, () -> new JsonEventCodec(registry)
                .decode(json("order-created", 1, "{\"orderId\":\"o\"}"), OrderCreatedV2.class));
        assertTrue(e.getMessage().contains("returned null"), e.getMessage());
    }

    @Test
    void aHandlerTypeThatIsNotRegisteredIsReported() {
        JsonEventCodec codec = new JsonEventCodec(v2Registry().build());
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(json("order-created", 1, "{}"), OrderCreatedV1.class));
        assertTrue(e.getMessage().contains(OrderCreatedV1.class.getName() + " is not registered"), e.getMessage());
    }

    @Test
    void aMessageOfAnotherRegisteredTypeDoesNotBindToTheHandlersType() {
        TypeRegistry registry = v2Registry().register("order-cancelled", 1, OrderCreatedV1.class).build();
        DecodingException e = assertThrows(DecodingException.class, () -> new JsonEventCodec(registry)
                .decode(json("order-cancelled", 1, "{}"), OrderCreatedV2.class));
        assertEquals("message type 'order-cancelled' does not match the handler's type order-created/v2", e.getMessage());
    }

    @EventType(value = "payment-processed", version = 2)
    record PaymentProcessed(String orderId) {
    }

    @EventType("order-shipped")
    record OrderShipped(String orderId) {
    }

    @Test
    void anAnnotatedClassLeftOutOfTheRegistryIsToldToBeRegisteredNotToBeAnnotated() {
        TypeRegistry registry = TypeRegistry.builder().register(PaymentProcessed.class).build();

        UnknownEventTypeException published = assertThrows(UnknownEventTypeException.class,
                () -> registry.idOf(OrderShipped.class));
        DecodingException handled = assertThrows(DecodingException.class, () -> new JsonEventCodec(registry)
                .decode(json("order-shipped", 1, "{}"), OrderShipped.class));

        for (String message : List.of(published.getMessage(), handled.getMessage())) {
            assertTrue(message.contains(OrderShipped.class.getName() + " (@EventType(\"order-shipped\"), version 1)"
                    + " is not registered"), message);
            assertTrue(message.contains("TypeRegistry.builder().register(OrderShipped.class)"), message);
            assertFalse(message.contains("annotate"), message);
        }
        UnknownEventTypeException plain = assertThrows(UnknownEventTypeException.class,
                () -> registry.idOf(OrderCreatedV1.class));
        assertTrue(plain.getMessage().contains("register(type, version, OrderCreatedV1.class) or annotate it with"
                + " @EventType and register(OrderCreatedV1.class)"), plain.getMessage());
    }

    @Test
    void aPublishOrHandlerOfAJdkOrGenericTypeIsToldToUseAnEventClassOrTheMessageNotToRegisterTheType() {
        TypeRegistry registry = TypeRegistry.builder().register(PaymentProcessed.class).build();
        JsonEventCodec codec = new JsonEventCodec(registry);

        for (Class<?> type : List.of(String.class, byte[].class, java.util.Map.class, Object.class,
                com.fasterxml.jackson.databind.node.ObjectNode.class)) {
            String published = assertThrows(UnknownEventTypeException.class, () -> registry.idOf(type)).getMessage();
            assertEquals(type.getTypeName() + " is not an event class the registry can bind; publish an instance of an"
                    + " event class registered in the TypeRegistry that holds the value, not the bare value", published);
            assertFalse(published.contains("register it"), published);
        }
        for (Class<?> type : List.of(String.class, byte[].class, java.util.Map.class, Object.class)) {
            String handled = assertThrows(DecodingException.class,
                    () -> codec.decode(json("order-shipped", 1, "{}"), type)).getMessage();
            assertEquals("the handler's " + type.getTypeName() + " is not an event class the registry can bind; take"
                    + " Message (its payload()) or JsonNode (the payload as a JSON tree) and read the value from it", handled);
        }
        String application = assertThrows(UnknownEventTypeException.class, () -> registry.idOf(OrderCreatedV1.class))
                .getMessage();
        assertTrue(application.contains("register it with TypeRegistry.builder().register(type, version,"
                + " OrderCreatedV1.class)"), application);
    }

    @Test
    void registryTakesTypeIdsFromTheAnnotationAndNeverFromClassNames() {
        TypeRegistry registry = TypeRegistry.builder().register(PaymentProcessed.class).build();
        assertEquals(new EventTypeId("payment-processed", 2), registry.idOf(PaymentProcessed.class));
        assertEquals(PaymentProcessed.class, registry.classFor("payment-processed", 2).orElseThrow());
        UnknownEventTypeException e = assertThrows(UnknownEventTypeException.class, () -> registry.idOf(OrderCreatedV1.class));
        assertTrue(e.getMessage().contains(OrderCreatedV1.class.getName() + " is not registered"), e.getMessage());
    }

    @Test
    void conflictingRegistrationsAreRejectedAtBuildTime() {
        ConfigurationException twice = assertThrows(ConfigurationException.class, () -> TypeRegistry.builder()
                .register("order-created", 1, OrderCreatedV1.class)
                .register("order-created", 1, OrderCreatedV2.class));
        assertTrue(twice.getMessage().contains("order-created/v1 is already registered"), twice.getMessage());
        ConfigurationException sameUpcaster = assertThrows(ConfigurationException.class, () -> TypeRegistry.builder()
                .upcaster("order-created", 1, t -> t)
                .upcaster("order-created", 1, t -> t));
        assertEquals("an upcaster of order-created from version 1 is already registered", sameUpcaster.getMessage());
        ConfigurationException notAnnotated = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().register(OrderCreatedV1.class));
        assertTrue(notAnnotated.getMessage().contains("has no @EventType annotation"), notAnnotated.getMessage());
    }

    @Test
    void aNullEventClassIsRefusedWithAConfigurationError() {
        ConfigurationException byId = assertThrows(ConfigurationException.class,
                () -> TypeRegistry.builder().register("order-created", 1, null));
        assertTrue(byId.getMessage().contains("order-created/v1"), byId.getMessage());
        assertThrows(ConfigurationException.class, () -> TypeRegistry.builder().register((Class<?>) null));
    }
}
