package io.streamsaga.kafka.internal;

import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

/** The shared header bytes of the publish path: same wire bytes, fewer arrays kept per in-flight record. */
class HeaderValuesTest {

    private static byte[] header(ProducerRecord<String, byte[]> record, String name) {
        return record.headers().lastHeader(name).value();
    }

    private static Message message(String type, int version) {
        return Message.builder("orders").key("k").type(type).version(version)
                .payload("{}".getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void recordsOfOneTypeAndVersionShareTheirHeaderArraysAndKeepTheWireBytes() {
        HeaderValues shared = new HeaderValues();
        ProducerRecord<String, byte[]> first = WireFormat.toRecord(message("order-created", 2), shared);
        ProducerRecord<String, byte[]> second = WireFormat.toRecord(message("order-created", 2), shared);

        assertSame(header(first, MessageHeaders.EVENT_TYPE), header(second, MessageHeaders.EVENT_TYPE));
        assertSame(header(first, MessageHeaders.EVENT_VERSION), header(second, MessageHeaders.EVENT_VERSION));
        assertArrayEquals("order-created".getBytes(StandardCharsets.UTF_8), header(second, MessageHeaders.EVENT_TYPE));
        assertArrayEquals("2".getBytes(StandardCharsets.UTF_8), header(second, MessageHeaders.EVENT_VERSION));
        // the message id is per message, never shared
        assertNotSame(header(first, MessageHeaders.MESSAGE_ID), header(second, MessageHeaders.MESSAGE_ID));
    }

    @Test
    void versionsOfSeveralDigitsAndNonAsciiTypesAreEncodedExactly() {
        HeaderValues shared = new HeaderValues();
        ProducerRecord<String, byte[]> record = WireFormat.toRecord(message("đơn-hàng-tạo", 12), shared);

        assertArrayEquals("đơn-hàng-tạo".getBytes(StandardCharsets.UTF_8), header(record, MessageHeaders.EVENT_TYPE));
        assertArrayEquals("12".getBytes(StandardCharsets.UTF_8), header(record, MessageHeaders.EVENT_VERSION));
    }

    @Test
    void onlyTheFirstTypesAreKeptSoUnboundedTypeNamesDoNotGrowMemory() {
        HeaderValues shared = new HeaderValues();
        for (int i = 0; i < HeaderValues.MAX_TYPES + 50; i++) {
            assertArrayEquals(("type-" + i).getBytes(StandardCharsets.UTF_8), shared.type("type-" + i));
        }

        assertEquals(HeaderValues.MAX_TYPES, shared.cachedTypes());
        assertSame(shared.type("type-0"), shared.type("type-0"));
        assertArrayEquals(("type-" + (HeaderValues.MAX_TYPES + 49)).getBytes(StandardCharsets.UTF_8),
                shared.type("type-" + (HeaderValues.MAX_TYPES + 49)));
    }
}
