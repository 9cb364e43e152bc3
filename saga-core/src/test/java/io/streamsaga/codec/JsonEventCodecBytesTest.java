package io.streamsaga.codec;

import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decoding byte payloads of the current version binds straight from the bytes; whatever that path
 * rejects still fails with the same typed errors as the tree path.
 */
class JsonEventCodecBytesTest {

    record PriceChanged(String sku, long cents) {
    }

    private final JsonEventCodec codec = new JsonEventCodec(
            TypeRegistry.builder().register("price-changed", 1, PriceChanged.class).build());

    private static Message bytes(String json) {
        return Message.builder("prices").type("price-changed").payload(json.getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void currentVersionBytesBindDirectlyIgnoringUnknownPropertiesAndLeadingWhitespace() {
        assertEquals(new PriceChanged("a", 5),
                codec.decode(bytes(" \n{\"sku\":\"a\",\"cents\":5,\"extra\":true}"), PriceChanged.class));
    }

    @Test
    void aJsonNullPayloadIsRejectedAsNotAnObject() {
        DecodingException e = assertThrows(DecodingException.class, () -> codec.decode(bytes("null"), PriceChanged.class));
        assertTrue(e.getMessage().contains("must be a JSON object, but was NULL"), e.getMessage());
    }

    @Test
    void aJsonStringPayloadIsRejectedAsNotAnObject() {
        DecodingException e = assertThrows(DecodingException.class, () -> codec.decode(bytes("\"a\""), PriceChanged.class));
        assertTrue(e.getMessage().contains("must be a JSON object, but was STRING"), e.getMessage());
    }

    @Test
    void aFieldOfTheWrongTypeRaisesACannotBindDecodingException() {
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(bytes("{\"sku\":\"a\",\"cents\":{\"x\":1}}"), PriceChanged.class));
        assertTrue(e.getMessage().startsWith("cannot bind price-changed v1 to PriceChanged"), e.getMessage());
    }

    @Test
    void truncatedJsonRaisesMalformedJson() {
        DecodingException e = assertThrows(DecodingException.class,
                () -> codec.decode(bytes("{\"sku\":\"a\",\"cents\":"), PriceChanged.class));
        assertTrue(e.getMessage().startsWith("malformed JSON payload"), e.getMessage());
    }
    @Test
    void anEventWithALoneSurrogateInAFieldNameIsRefusedAtEncodingAndOneInAValueOrAPairInANameIsKept() {
        // Jackson writes a lone surrogate as the escape \uD800, which it reads back in a value but refuses in a field
        // name: such an event was encoded, sent, and dead-lettered as undecodable by every consumer.
        for (String name : java.util.List.of("item-\uD800", "\uDC00", "a\uDC00\uD800b")) {
            EncodingException e = assertThrows(EncodingException.class, () -> codec.encode(java.util.Map.of(name, 1)));
            assertTrue(e.getMessage().contains("lone surrogate"), e.getMessage());
            assertTrue(e.getMessage().contains("field name"), e.getMessage());
        }
        java.util.Map<String, String> fine = java.util.Map.of("item-\uD83D\uDE00", "v-\uD800", "\\uD800", "\\\\uD800");
        assertEquals(fine, codec.mapper().convertValue(codec.toTree(codec.encode(fine)), java.util.Map.class),
                "a value with a lone surrogate, a pair in a name and the text of an escape read back as they were");
    }
}
