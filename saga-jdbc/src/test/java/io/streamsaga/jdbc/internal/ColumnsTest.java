package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ColumnsTest {
    @Test
    void freeTextIsCutToItsColumnNeverInsideACharacterWithEachNulReplaced() {
        assertNull(Columns.text(null, 10));
        assertEquals("a\uFFFDb", Columns.text("a\0b", 10));
        assertEquals("kkk", Columns.text("kkkk", 3));
        assertEquals("kk", Columns.text("kk\uD83D\uDE00", 3));
    }

    @Test
    void freeTextHasEachLoneSurrogateReplacedAndKeepsWellFormedPairs() {
        // PostgreSQL's driver writes a lone surrogate as '?' and H2 stores it: U+FFFD on both, as for U+0000.
        assertEquals("a\uFFFDb\uFFFD\uD83D\uDE00\uFFFD\uFFFD", Columns.text("a\uD800b\uDC00\uD83D\uDE00\uDE00\0", 20));
        assertEquals("\uFFFDx", Columns.text("\uDBFFx", 20));
        String plain = "caf\u00e9 \uD83D\uDE00";
        assertSame(plain, Columns.text(plain, 20), "well-formed text within its width is not copied");
    }

    @Test
    void anIdWithALoneSurrogateIsRefusedNamingItWhereAWellFormedPairIsTaken() {
        // A value differing from another only in a lone surrogate would be the same value on PostgreSQL ('?').
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> Columns.requireFits("m-\uD800", 500, "message id", " for the inbox"));
        assertTrue(e.getMessage().startsWith("message id must not contain a lone surrogate (U+D800 at index 2, not half"
                + " of a pair: malformed UTF-16, which PostgreSQL's driver writes as '?') for the inbox, but was '"),
                e.getMessage());
        for (String lone : new String[] {"\uDC00", "a\uDC00\uD800", "a\uD800", "\uD800a", "\uD83D\uDE00\uDE00"}) {
            assertThrows(ConfigurationException.class, () -> Columns.requireFits(lone, 500, "id", ""), lone);
            assertTrue(Columns.holdsUnstorable(lone), lone);
        }
        Columns.requireFits("m-\uD83D\uDE00", 500, "id", "");
        assertFalse(Columns.holdsUnstorable("m-\uD83D\uDE00"));
        assertFalse(Columns.holdsUnstorable(null));
        assertEquals(3, Columns.firstUnstorable("\uD83D\uDE00a\0\uD800"));
        assertEquals(2, Columns.firstUnstorable("ab\uDC00\0"));
        assertEquals(-1, Columns.firstUnstorable(""));
    }
}
