package io.streamsaga.kafka;

import io.streamsaga.kafka.internal.WireFormat;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Reading records into messages, without a broker: the consume path's per-record mapping. */
class WireFormatTest {

    private static ConsumerRecord<String, byte[]> record(String... headerPairs) {
        RecordHeaders headers = new RecordHeaders();
        for (int i = 0; i < headerPairs.length; i += 2) {
            headers.add(headerPairs[i], headerPairs[i + 1] == null ? null : headerPairs[i + 1].getBytes(StandardCharsets.UTF_8));
        }
        return new ConsumerRecord<>("orders", 2, 7L, 1_700_000_000_000L, TimestampType.CREATE_TIME, 0, 0, "k-1",
                "{}".getBytes(StandardCharsets.UTF_8), headers, Optional.empty());
    }

    @Test
    void fieldHeadersBecomeMessageFieldsAndTheRestStayHeadersInOrder() {
        Message m = WireFormat.fromRecord(record(MessageHeaders.MESSAGE_ID, "id-1", "b", "2",
                MessageHeaders.EVENT_TYPE, "order-created", "a", "1", MessageHeaders.EVENT_VERSION, "12", "c", "3"));
        assertEquals("id-1", m.id());
        assertEquals("order-created", m.type());
        assertEquals(12, m.version());
        assertEquals(List.of("b", "a", "c"), List.copyOf(m.headers().keySet()));
        assertEquals(Map.of("a", "1", "b", "2", "c", "3"), m.headers());
        assertEquals("k-1", m.key());
        assertEquals(1_700_000_000_000L, m.timestamp().toEpochMilli());
        assertArrayEquals("{}".getBytes(StandardCharsets.UTF_8), (byte[]) m.payload());
    }

    @Test
    void aRepeatedHeaderKeepsItsLastValueWhetherAloneOrAmongOthers() {
        Message alone = WireFormat.fromRecord(record("x", "1", "x", "2", MessageHeaders.EVENT_VERSION, "3"));
        assertEquals(Map.of("x", "2"), alone.headers());
        assertEquals(3, alone.version());
        Message among = WireFormat.fromRecord(record("x", "1", "y", "0", "x", "2", MessageHeaders.EVENT_TYPE, "t1",
                MessageHeaders.EVENT_TYPE, "t2"));
        assertEquals(List.of("x", "y"), List.copyOf(among.headers().keySet()));
        assertEquals("2", among.headers().get("x"));
        assertEquals("t2", among.type());
    }

    @Test
    void headersAreReadOnly() {
        Message one = WireFormat.fromRecord(record("x", "1"));
        Message two = WireFormat.fromRecord(record("x", "1", "y", "2"));
        assertThrows(UnsupportedOperationException.class, () -> one.headers().put("z", "3"));
        assertThrows(UnsupportedOperationException.class, () -> two.headers().put("z", "3"));
    }

    @Test
    void aRecordWithoutStandardHeadersGetsAStableIdTheTopicAsTypeAndVersionOne() {
        Message first = WireFormat.fromRecord(record());
        Message again = WireFormat.fromRecord(record(MessageHeaders.MESSAGE_ID, null, MessageHeaders.EVENT_VERSION, "x"));
        assertEquals(first.id(), again.id());
        assertEquals("orders", first.type());
        assertEquals(1, first.version());
        assertEquals(1, again.version());
        assertEquals(Map.of(), first.headers());
    }

    @Test
    void aNullHeaderValueReadsAsEmpty() {
        assertEquals(Map.of("x", ""), WireFormat.fromRecord(record("x", null)).headers());
    }
}
