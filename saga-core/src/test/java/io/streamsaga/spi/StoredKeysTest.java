package io.streamsaga.spi;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StoredKeysTest {

    @Test
    void aNulOrALoneSurrogateIsFoundAndAWellFormedPairIsAnOrdinaryCharacter() {
        assertEquals(-1, StoredKeys.firstUnstorable("order-\uD83D\uDE00-1"));
        assertEquals(2, StoredKeys.firstUnstorable("ab\0c"));
        assertEquals(2, StoredKeys.firstUnstorable("ab\uD800"));
        assertEquals(2, StoredKeys.firstUnstorable("ab\uDC00\uD800"));
        assertEquals(3, StoredKeys.firstUnstorable("\uD83D\uDE00a\uD83D"));
        assertEquals(4, StoredKeys.firstLoneSurrogate("a\0b\0\uDC00"), "a NUL is passed over");
        assertFalse(StoredKeys.isUnstorable(null));
        assertTrue(StoredKeys.isUnstorable("\0"));
    }

    @Test
    void aRefusalNamesTheValueAndForALoneSurrogateItsCodeUnitAndIndex() {
        StoredKeys.requireStorable(null, "saga id");
        ConfigurationException nul = assertThrows(ConfigurationException.class,
                () -> StoredKeys.requireStorable("s\0", "saga id"));
        assertTrue(nul.getMessage().startsWith("saga id must not contain the character U+0000 (NUL)"), nul.getMessage());
        ConfigurationException lone = assertThrows(ConfigurationException.class,
                () -> StoredKeys.requireStorable("s-\uDC00", "owner"));
        assertTrue(lone.getMessage().startsWith("owner must not contain a lone surrogate (U+DC00 at index 2,"),
                lone.getMessage());
    }

    @Test
    void aValueOverItsLimitIsRefusedNamingTheLimitAndOneAtItPasses() {
        StoredKeys.requireStorable("s".repeat(StoredKeys.MAX_SAGA_ID_LENGTH), StoredKeys.MAX_SAGA_ID_LENGTH, "saga id");
        StoredKeys.requireStorable(null, StoredKeys.MAX_SAGA_ID_LENGTH, "saga id");
        ConfigurationException tooLong = assertThrows(ConfigurationException.class, () -> StoredKeys.requireStorable(
                "s".repeat(StoredKeys.MAX_SAGA_ID_LENGTH + 1), StoredKeys.MAX_SAGA_ID_LENGTH, "saga id"));
        assertTrue(tooLong.getMessage().startsWith("saga id must be at most 200 characters, but was 'sss"),
                tooLong.getMessage());
        assertThrows(ConfigurationException.class, () -> StoredKeys.requireStorable("s\0", 10, "saga id"));
    }
}
