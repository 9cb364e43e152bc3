package io.streamsaga.jdbc.internal;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class ColumnsTest {
    @Test
    void freeTextIsCutToItsColumnNeverInsideACharacterWithEachNulReplaced() {
        assertNull(Columns.text(null, 10));
        assertEquals("a\uFFFDb", Columns.text("a\0b", 10));
        assertEquals("kkk", Columns.text("kkkk", 3));
        assertEquals("kk", Columns.text("kk\uD83D\uDE00", 3));
    }
}
