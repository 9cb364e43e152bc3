package io.streamsaga.message;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MessageTest {

    @Test
    void builderFillsIdVersionAndTimestamp() {
        Message message = Message.builder("order-created").type("order-created").payload("x").build();
        assertEquals(4, UUID.fromString(message.id()).version());
        assertEquals(1, message.version());
        assertTrue(message.timestamp() != null);
        assertEquals(Map.of(), message.headers());
    }

    @Test
    void generatedIdsAreUniqueVersionFourUuids() {
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < 100_000; i++) {
            String id = Message.newId();
            UUID uuid = UUID.fromString(id);
            assertEquals(4, uuid.version());
            assertEquals(2, uuid.variant());
            ids.add(id);
        }
        assertEquals(100_000, ids.size());
    }

    @Test
    void invalidFieldsAreRejectedQuotingTheValue() {
        assertEquals("event type must not be blank, but was ' '", assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type(" ").build()).getMessage());
        assertEquals("event version must be 1 or more, but was 0", assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type("e").version(0).build()).getMessage());
        assertEquals("message id must not be blank, but was ''", assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type("e").id("").build()).getMessage());
        assertEquals("message id must not be blank, but was null", assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type("e").id(null).build()).getMessage());
        assertThrows(ConfigurationException.class, () -> Message.builder(null).type("e").build());
    }

    @Test
    void aBlankFieldFromOutsideIsQuotedBounded() {
        // A broker record's blank id header of 10,000 spaces went whole into the refusal, logs and a dead letter.
        String message = assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type("e").id(" ".repeat(10_000)).build()).getMessage();
        assertEquals("message id must not be blank, but was '" + " ".repeat(64) + "...' (10000 characters)", message);
    }

    @Test
    void blankMeansWhitespaceOnlyBeyondAsciiToo() {
        assertEquals("topic must not be blank, but was '\u2003\\u0009'", assertThrows(ConfigurationException.class,
                () -> Message.builder("\u2003\t").type("e").build()).getMessage());
        assertEquals("message id must not be blank, but was ' \u3000'", assertThrows(ConfigurationException.class,
                () -> Message.builder("t").type("e").id(" \u3000").build()).getMessage());
        // Leading whitespace, ASCII or not, is allowed when something else follows.
        assertEquals("\u2003id", Message.builder("t").type("e").id("\u2003id").build().id());
        assertEquals(" e", Message.builder("t").type(" e").build().type());
        assertEquals("\u00e9v\u00e9nement", Message.builder("t").type("\u00e9v\u00e9nement").build().type());
    }

    @Test
    void headersAreCopiedAndImmutable() {
        Map<String, String> source = new LinkedHashMap<>();
        source.put(MessageHeaders.CORRELATION_ID, "c-1");
        Message message = Message.builder("t").type("e").headers(source).build();
        source.put("later", "x");
        assertEquals(Map.of(MessageHeaders.CORRELATION_ID, "c-1"), message.headers());
        assertThrows(UnsupportedOperationException.class, () -> message.headers().put("x", "y"));
    }

    @Test
    void headersKeepTheirInsertionOrder() {
        Message message = Message.builder("t").type("e")
                .header("c", "3").header("a", "1").header("b", "2").build();
        assertEquals(List.of("c", "a", "b"), List.copyOf(message.headers().keySet()));
    }

    @Test
    void removeHeaderDropsAHeader() {
        Message message = Message.builder("t").type("e").header("a", "1").header("b", "2").removeHeader("a").build();
        assertEquals(Map.of("b", "2"), message.headers());
    }

    @Test
    void aNullHeaderValueOrNameIsRefusedAlikeByTheBuilderTheMessageAndItsCopies() {
        Message message = Message.builder("t").type("e").header("a", "1").build();
        Map<String, String> nullValue = new LinkedHashMap<>();
        nullValue.put("a", null);
        Map<String, String> nullName = new LinkedHashMap<>();
        nullName.put(null, "1");

        assertThrows(ConfigurationException.class, () -> Message.builder("t").type("e").header("a", null));
        assertThrows(ConfigurationException.class, () -> Message.builder("t").type("e").header(null, "1"));
        assertThrows(ConfigurationException.class, () -> Message.builder("t").type("e").headers(nullValue));
        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> new Message("id", "t", null, "e", 1, null, nullValue, Instant.now()));
        assertTrue(refused.getMessage().contains("header 'a'"), refused.getMessage());
        assertThrows(ConfigurationException.class, () -> new Message("id", "t", null, "e", 1, null, nullName, Instant.now()));
        assertThrows(ConfigurationException.class, () -> message.withHeader("b", null));
        assertThrows(ConfigurationException.class, () -> message.withHeaders(nullValue));
    }

    /**
     * The id, type and version are fields a transport carries as these headers (Kafka drops such a header when it
     * writes the record and reads them back as the fields): as a header they would reach a consumer on one transport
     * and vanish on another, and an application setting message-id there would get a random id (and its inbox a
     * resend taken as a new message). One rule on every transport: refused, naming the builder method to use.
     */
    @Test
    void aHeaderNamedAfterTheIdTypeOrVersionFieldIsRefusedNamingTheFieldToSet() {
        Message message = Message.builder("t").type("e").build();
        for (String field : List.of(MessageHeaders.MESSAGE_ID, MessageHeaders.EVENT_TYPE, MessageHeaders.EVENT_VERSION)) {
            Map<String, String> copied = new LinkedHashMap<>(Map.of("a", "1", field, "x"));
            ConfigurationException refused = assertThrows(ConfigurationException.class,
                    () -> new Message("id", "t", null, "e", 1, null, Map.of(field, "x"), Instant.now()));
            assertTrue(refused.getMessage().contains("'" + field + "'") && refused.getMessage().contains("Message.Builder."),
                    refused.getMessage());
            assertThrows(ConfigurationException.class,
                    () -> new Message("id", "t", null, "e", 1, null, Map.of("a", "1", field, "x"), Instant.now()));
            assertThrows(ConfigurationException.class,
                    () -> new Message("id", "t", null, "e", 1, null, copied, Instant.now()));
            assertThrows(ConfigurationException.class, () -> Message.builder("t").type("e").header(field, "x").build());
            assertThrows(ConfigurationException.class, () -> Message.builder("t").type("e").headers(copied).build());
            assertThrows(ConfigurationException.class, () -> message.withHeader(field, "x"));
            assertThrows(ConfigurationException.class, () -> message.withHeaders(copied));
        }
    }

    @Test
    void standardHeadersHaveAccessors() {
        Message message = Message.builder("t").type("e")
                .header(MessageHeaders.CORRELATION_ID, "corr")
                .header(MessageHeaders.CAUSATION_ID, "cause")
                .header(MessageHeaders.SAGA_ID, "saga")
                .build();
        assertEquals("corr", message.correlationId().orElseThrow());
        assertEquals("cause", message.causationId().orElseThrow());
        assertEquals("saga", message.sagaId().orElseThrow());
    }

    @Test
    void copiesChangeOneThingAndKeepTheId() {
        Instant at = Instant.parse("2026-01-01T00:00:00Z");
        Message original = Message.builder("order-created").key("k").type("order-created").version(2)
                .payload("p").header("a", "1").timestamp(at).build();
        Message moved = original.withTopic("order-created.DLT");
        assertEquals("order-created.DLT", moved.topic());
        assertEquals(original.id(), moved.id());
        Message repacked = original.withPayload(new byte[] {1});
        assertEquals(original.headers(), repacked.headers());
        Message tagged = original.withHeader("b", "2").withHeaders(Map.of("c", "3"));
        assertEquals(Map.of("a", "1", "b", "2", "c", "3"), tagged.headers());
        assertEquals(Map.of("a", "1"), original.headers(), "the original is unchanged");
        assertEquals(original, original.toBuilder().build());
        assertNotEquals(original.id(), Message.builder("order-created").type("order-created").build().id());
    }

    @Test
    void toStringShowsNoPayload() {
        Message message = Message.builder("t").type("e").payload("secret-card-number").build();
        assertTrue(!message.toString().contains("secret-card-number"), message.toString());
    }

    @Test
    void toStringQuotesEachValueBoundedWithItsControlCharactersShown() {
        // Values come from a broker record: a NUL or a line break went raw into the log line that names the
        // message, and a 1 MB header value went whole into it.
        Message message = Message.builder("orders").id("m-1").key("k\r\nforged log line").type("order-created")
                .header("trace", "a\0b\tc\u001b[31m").header("big", "v".repeat(1_000_000)).build();

        assertEquals("Message[id='m-1', topic='orders', key='k\\u000d\\u000aforged log line', type='order-created', "
                + "version=1, headers={'trace'='a\\u0000b\\u0009c\\u001b[31m', 'big'='" + "v".repeat(64)
                + "...' (1000000 characters)}]", message.toString());
        assertEquals("a\0b\tc\u001b[31m", message.header("trace").orElseThrow(), "the accessors keep the value as it is");
        assertEquals("Message[id='m-2', topic='t', key=null, type='e', version=1, headers={}]",
                Message.builder("t").id("m-2").type("e").build().toString());
    }
    @Test
    void toStringShowsTheFirstHeadersAndTheCountOfAllOfThem() {
        // Headers come from a broker record too: a message with thousands of them made a log line of all of them.
        Message.Builder builder = Message.builder("orders").id("m-1").type("order-created");
        for (int i = 0; i < 5_000; i++) {
            builder.header("h" + i, "v" + i);
        }
        String text = builder.build().toString();

        StringBuilder shown = new StringBuilder();
        for (int i = 0; i < 32; i++) {
            shown.append(i == 0 ? "" : ", ").append("'h").append(i).append("'='v").append(i).append('\'');
        }
        assertEquals("Message[id='m-1', topic='orders', key=null, type='order-created', version=1, headers={"
                + shown + ", ...} (5000 headers)]", text);
    }
}
