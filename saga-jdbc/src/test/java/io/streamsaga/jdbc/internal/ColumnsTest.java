package io.streamsaga.jdbc.internal;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class ColumnsTest {
    @Test
    void aShortValueIsQuotedWholeALongOneAsItsFirstCharactersNeverHalfACharacterAndItsLength() {
        assertEquals("'m-1'", Columns.quote("m-1"));
        assertEquals("null", Columns.quote(null));
        assertEquals("'" + "k".repeat(64) + "'", Columns.quote("k".repeat(64)));
        assertEquals("'" + "k".repeat(64) + "...' (65 characters)", Columns.quote("k".repeat(65)));
        // a character outside the BMP (two chars in Java) across the cut is left out whole
        assertEquals("'" + "k".repeat(63) + "...' (100 characters)", Columns.quote("k".repeat(63) + "\uD83D\uDE00" + "k".repeat(35)));
        assertEquals("'a\\u0000b'", Columns.quote("a\0b"), "a NUL is shown, not written into the log");
    }

    @Test
    void freeTextIsCutToItsColumnNeverInsideACharacterWithEachNulReplaced() {
        assertNull(Columns.text(null, 10));
        assertEquals("a\uFFFDb", Columns.text("a\0b", 10));
        assertEquals("kkk", Columns.text("kkkk", 3));
        assertEquals("kk", Columns.text("kk\uD83D\uDE00", 3));
    }
}
