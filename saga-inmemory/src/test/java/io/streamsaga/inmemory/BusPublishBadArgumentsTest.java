package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DESIGN.md: "bad input gets a clear, typed error at the API". The bus already fails the returned stage with a
 * {@link ConfigurationException} for a null event or an illegal topic; a null headers map, a null header name or
 * value, or a null message must be refused the same way, naming the argument, not with a NullPointerException
 * thrown from inside the bus (or a header silently dropped).
 */
class BusPublishBadArgumentsTest {
    record Item(String id) {
    }

    private static EventBus bus(InMemoryTransport transport) {
        return EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    }

    private static ConfigurationException refusal(CompletionStage<?> stage) {
        CompletionException thrown = assertThrows(CompletionException.class, () -> stage.toCompletableFuture().join());
        return assertInstanceOf(ConfigurationException.class, thrown.getCause());
    }

    @Test
    void nullHeadersAreRefusedWithATypedErrorNamingThem() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            ConfigurationException error = refusal(bus.publish("item", "k", new Item("1"), null));
            assertTrue(error.getMessage().contains("headers"), error.getMessage());
            assertEquals(0, transport.messages("item").size());
        }
    }

    @Test
    void aNullHeaderNameOrValueIsRefusedRatherThanDropped() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            Map<String, String> nullValue = new HashMap<>();
            nullValue.put("tenant", null);
            assertTrue(refusal(bus.publish("item", "k", new Item("1"), nullValue)).getMessage().contains("tenant"));
            Map<String, String> nullName = new HashMap<>();
            nullName.put(null, "x");
            assertTrue(refusal(bus.publish("item", "k", new Item("1"), nullName)).getMessage().contains("header"));
            assertEquals(0, transport.messages("item").size());
        }
    }

    /**
     * The seed's idempotent producer puts its deterministic id in a messageId header. Here the in-memory bus kept such
     * a header beside a random id and Kafka dropped it, so the consumer's inbox took a resend as a new message on both:
     * refused, naming the way to set the id.
     */
    @Test
    void aMessageIdHeaderIsRefusedNamingTheBuildersIdRatherThanSentWithARandomId() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            String refusal = refusal(bus.publish("item", "k", new Item("1"), Map.of("message-id", "order-1"))).getMessage();
            assertTrue(refusal.contains("'message-id'") && refusal.contains("Message.Builder.id"), refusal);
            assertEquals(0, transport.messages("item").size());
        }
    }

    /**
     * A message built to carry a deterministic id (an aggregator's release, docs/patterns.md) spells its type and
     * version by hand. A version left at the builder's default 1 for a class registered at 2, or a misspelt type, was
     * sent: its consumers then read a v2 payload as v1 (running the v1 upcasters over it) or dead-lettered it as an
     * unknown type. Refused at the publish, naming the registered type id; an encoded payload is sent as it is.
     */
    @Test
    void aBuiltMessageWhoseTypeIsNotItsPayloadsRegisteredTypeIsRefusedNamingTheRegisteredOne() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("item", 2, Item.class).build()).build()) {
            String versionLeftAt1 = refusal(bus.publish(Message.builder("item").id("item-1").key("k").type("item")
                    .payload(new Item("1")).build())).getMessage();
            assertTrue(versionLeftAt1.contains("item/v2") && versionLeftAt1.contains(".version(2)"), versionLeftAt1);
            String misspelt = refusal(bus.publish(Message.builder("item").id("item-1").key("k").type("itme").version(2)
                    .payload(new Item("1")).build())).getMessage();
            assertTrue(misspelt.contains("'itme'") && misspelt.contains("type('item')"), misspelt);
            assertEquals(0, transport.messages("item").size());

            bus.publish(Message.builder("item").id("item-1").key("k").type("item").version(2).payload(new Item("1"))
                    .build()).toCompletableFuture().join();
            bus.publish(Message.builder("item").id("item-2").key("k").type("item").version(1)
                    .payload("{\"id\":\"2\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8)).build())
                    .toCompletableFuture().join();
            assertEquals(2, transport.messages("item").size());
        }
    }

    @Test
    void theRefusalOfANullEventOrNullHeadersQuotesTheTopicBounded() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            // A topic of any length: it went whole into the refusal, logs and a dead letter's headers (one this long
            // is refused for its length first, quoted as bounded as the null event's refusal quotes a legal one).
            String topic = "t-" + "x".repeat(10_000);
            for (String refusal : new String[] {refusal(bus.publish(topic, "k", null)).getMessage(),
                    refusal(bus.publish(topic, "k", new Item("1"), null)).getMessage()}) {
                assertTrue(refusal.length() < 300 && refusal.contains("'t-xxx")
                        && refusal.contains("(10002 characters)"), refusal);
            }
            String longest = "t-" + "x".repeat(243);
            assertTrue(refusal(bus.publish(longest, "k", null)).getMessage().startsWith("event must not be null (topic 't-xxx"));
            assertEquals("event must not be null (topic 'item')", refusal(bus.publish("item", "k", null)).getMessage());
        }
    }

    @Test
    void aNullMessageIsRefusedWithATypedError() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            assertTrue(refusal(bus.publish((Message) null)).getMessage().contains("message"));
        }
    }
    @Test
    void anEventWithALoneSurrogateInAFieldNameIsRefusedAtPublishOnATransportOfBytes() {
        // Such an event was sent as bytes that no consumer could read back (Jackson refuses the escape \uD800 in a
        // field name): every consumer group dead-lettered it as undecodable. The publish now fails with a typed error.
        InMemoryTransport transport = InMemoryTransport.builder().serializePayloads(true)
                .deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("tags", 1, Tags.class).build()).build()) {
            CompletionException thrown = assertThrows(CompletionException.class, () -> bus.publish("tags", "k",
                    new Tags(Map.of("colour-\uD800", "red"))).toCompletableFuture().join());
            io.streamsaga.codec.EncodingException error =
                    assertInstanceOf(io.streamsaga.codec.EncodingException.class, thrown.getCause());
            assertTrue(error.getMessage().contains("lone surrogate"), error.getMessage());
            assertEquals(0, transport.messages("tags").size(), "nothing was sent");

            bus.publish("tags", "k", new Tags(Map.of("colour", "red-\uD800"))).toCompletableFuture().join();
            assertEquals(1, transport.messages("tags").size(), "a lone surrogate in a value reads back: it is sent");
        }
    }

    record Tags(Map<String, String> tags) {
    }
}
