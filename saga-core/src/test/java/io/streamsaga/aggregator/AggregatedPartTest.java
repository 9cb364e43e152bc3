package io.streamsaga.aggregator;

import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AggregatedPartTest {

    @Test
    void aPartStoredByAnEarlierVersionWithAHeaderNamedAfterItsIdTypeOrVersionReadsAsItsMessageWithoutThatHeader() {
        // An earlier version's Message took a message-id, event-type or event-version header (the in-memory bus
        // delivered it), and an aggregator stored it with the part; a Message now refuses such a header, so a group
        // read back holding that part could not tell its sequence, release or dead-letter it: stuck for good.
        AggregatedPart stored = new AggregatedPart("m-1", "items", "item-added", 2,
                Map.of(MessageHeaders.MESSAGE_ID, "by-header", MessageHeaders.EVENT_TYPE, "other",
                        MessageHeaders.EVENT_VERSION, "9", MessageHeaders.SEQUENCE_ID, "s-1",
                        MessageHeaders.SEQUENCE_NUMBER, "1", MessageHeaders.SEQUENCE_LAST, "true",
                        MessageHeaders.SEQUENCE_SIZE, "1"),
                "{}".getBytes(StandardCharsets.UTF_8), Instant.EPOCH, "k");

        Message message = stored.toMessage();

        assertEquals("m-1", message.id(), "the part's own id, as Kafka dropped such a header");
        assertEquals("item-added", message.type());
        assertEquals(2, message.version());
        assertEquals(Map.of(MessageHeaders.SEQUENCE_ID, "s-1", MessageHeaders.SEQUENCE_NUMBER, "1",
                MessageHeaders.SEQUENCE_LAST, "true", MessageHeaders.SEQUENCE_SIZE, "1"), stored.headers());
        assertEquals(1, stored.sequence().orElseThrow().number());
    }
}
