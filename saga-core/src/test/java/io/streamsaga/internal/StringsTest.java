package io.streamsaga.internal;

import org.junit.jupiter.api.Test;

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
}
