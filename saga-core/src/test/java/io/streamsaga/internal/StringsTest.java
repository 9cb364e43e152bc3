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
    void boundedKeepsAShortValueAndCutsALongOneBeforeASurrogatePairNamingItsLength() {
        assertEquals("abc", Strings.bounded("abc", 3));
        assertEquals(null, Strings.bounded(null, 3));
        assertEquals("abc... (4 characters)", Strings.bounded("abcd", 3));
        assertEquals("ab... (4 characters)", Strings.bounded("ab\uD83D\uDE00", 3), "a pair is not split");
    }
}
