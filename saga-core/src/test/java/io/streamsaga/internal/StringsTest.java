package io.streamsaga.internal;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StringsTest {

    @Test
    void notBlankAgreesWithIsBlankWhateverTheFirstCharacter() {
        for (String value : new String[] {"", " ", "\t\n", "\u2003", " \u3000", "a", " a", "\u2003id", "\u00e9t\u00e9",
                "~", "\u007f", "\u007fx", "\u0085"}) {
            assertTrue(Strings.notBlank(value) == !value.isBlank(), () -> "'" + value + "'");
        }
        assertFalse(Strings.notBlank(null));
    }

    @Test
    void aShortValueIsQuotedWholeALongOneAsItsFirstCharactersNeverHalfACharacterAndItsLength() {
        assertEquals("'m-1'", Strings.quote("m-1"));
        assertEquals("null", Strings.quote(null));
        assertEquals("'" + "k".repeat(64) + "'", Strings.quote("k".repeat(64)));
        assertEquals("'" + "k".repeat(64) + "...' (65 characters)", Strings.quote("k".repeat(65)));
        // a character outside the BMP (two chars in Java) across the cut is left out whole
        assertEquals("'" + "k".repeat(63) + "...' (100 characters)", Strings.quote("k".repeat(63) + "\uD83D\uDE00" + "k".repeat(35)));
        assertEquals("'a\\u0000b'", Strings.quote("a\0b"), "a NUL is shown, not written into the log");
    }
}
