package io.streamsaga;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The one way refusals quote a value from outside: bounded, so a 1 MB value never goes whole into logs. */
class StreamSagaExceptionTest {

    @Test
    void aShortValueIsQuotedWholeALongOneAsItsFirstCharactersNeverHalfACharacterAndItsLength() {
        assertEquals("'m-1'", StreamSagaException.quote("m-1"));
        assertEquals("null", StreamSagaException.quote(null));
        assertEquals("'" + "k".repeat(64) + "'", StreamSagaException.quote("k".repeat(64)));
        assertEquals("'" + "k".repeat(64) + "...' (65 characters)", StreamSagaException.quote("k".repeat(65)));
        // a character outside the BMP (two chars in Java) across the cut is left out whole
        assertEquals("'" + "k".repeat(63) + "...' (100 characters)",
                StreamSagaException.quote("k".repeat(63) + "\uD83D\uDE00" + "k".repeat(35)));
        assertEquals("'a\\u0000b'", StreamSagaException.quote("a\0b"), "a NUL is shown, not written into the log");
        assertEquals("'a\\u000d\\u000ab\\u0009\\u007f\\u009f\u00a0'", StreamSagaException.quote("a\r\nb\t\u007f\u009f\u00a0"),
                "a line break or another control character is shown, not written into the log");
    }

    @Test
    void aLoneSurrogateIsShownAsItsEscapeWhereALogWouldWriteAQuestionMarkAndAPairIsKept() {
        assertEquals("'a\\ud800b'", StreamSagaException.quote("a\uD800b"));
        assertEquals("'a\\udc00'", StreamSagaException.quote("a\uDC00"));
        assertEquals("'\\udbff'", StreamSagaException.quote("\uDBFF"));
        assertEquals("'\\udc00\\ud800'", StreamSagaException.quote("\uDC00\uD800"), "reversed: two lone halves");
        assertEquals("'a\uD83D\uDE00b'", StreamSagaException.quote("a\uD83D\uDE00b"), "a pair is a character");
    }
}
