package io.streamsaga.splitter;

import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.Test;

import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Malformed sequence headers are refused with a plain message quoting the headers' values bounded. */
class SequenceInfoTest {
    private static Message part(String number, String size, String last) {
        Message.Builder builder = Message.builder("item").type("item").payload("x".repeat(10_000))
                .header(MessageHeaders.SEQUENCE_ID, "s-1").header(MessageHeaders.SEQUENCE_NUMBER, number);
        if (size != null) {
            builder.header(MessageHeaders.SEQUENCE_SIZE, size);
        }
        if (last != null) {
            builder.header(MessageHeaders.SEQUENCE_LAST, last);
        }
        return builder.build();
    }

    /**
     * A worker that answers each part of a split (its result carrying the part's sequence headers) lets an aggregator
     * complete over the results on the sequence's end; the headers it gives its result read back as the part's.
     */
    @Test
    void aPartsHeadersReadBackAsThePartOnTheEventThatAnswersIt() {
        Message part = part("2", "3", "false");
        SequenceInfo info = SequenceInfo.of(part).orElseThrow();
        Message result = Message.builder("result").type("result").payload("ok").headers(info.headers()).build();
        assertEquals(info, SequenceInfo.of(result).orElseThrow());
        assertEquals(java.util.Map.of(MessageHeaders.SEQUENCE_ID, "s-1", MessageHeaders.SEQUENCE_NUMBER, "2",
                MessageHeaders.SEQUENCE_SIZE, "3", MessageHeaders.SEQUENCE_LAST, "false"), info.headers());
        SequenceInfo sizeUnknown = new SequenceInfo("s-1", 1, OptionalInt.empty(), false);
        assertEquals(sizeUnknown, SequenceInfo.of(Message.builder("result").type("result").payload("ok")
                .headers(sizeUnknown.headers()).build()).orElseThrow());
        assertTrue(!sizeUnknown.headers().containsKey(MessageHeaders.SEQUENCE_SIZE));
    }

    @Test
    void aSizeBelowTheNumberIsRefusedNamingTheSizeAsANumber() {
        ConfigurationException refused = assertThrows(ConfigurationException.class, () -> SequenceInfo.of(part("3", "2", null)));
        assertEquals("sequence size 2 is smaller than sequence number 3", refused.getMessage());
    }

    @Test
    void theLastPartsMarkWithAnotherSizeIsRefusedNamingTheSizeAsANumber() {
        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> new SequenceInfo("s-1", 2, OptionalInt.of(3), true));
        assertEquals("the last part must carry the sequence size equal to its number 2, but size was 3", refused.getMessage());
        refused = assertThrows(ConfigurationException.class, () -> new SequenceInfo("s-1", 2, OptionalInt.empty(), true));
        assertEquals("the last part must carry the sequence size equal to its number 2, but size was none", refused.getMessage());
    }

    @Test
    void aNumberOrSizeThatIsNoWholeNumberIsRefusedQuotingTheHeaderBoundedNotTheWholeMessage() {
        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> SequenceInfo.of(part("9".repeat(1000), "2", null)));
        assertTrue(refused.getMessage().startsWith("sequence-number '" + "9".repeat(64) + "...' (1000 characters)"), refused.getMessage());
        assertTrue(refused.getMessage().length() < 300, refused.getMessage());

        refused = assertThrows(ConfigurationException.class, () -> SequenceInfo.of(part("1", "two", null)));
        assertEquals("sequence-size 'two' of sequence 's-1' is not a whole number", refused.getMessage());
    }
}
