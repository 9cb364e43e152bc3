package io.streamsaga.saga.spi;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecoveryQueryTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @Test
    void anExcludedOwnerOrAPositionHoldingANulOrALoneSurrogateIsRefusedWhereTheQueryIsMade() {
        // A store passes them to its query (JdbcSagaStore to SQL): PostgreSQL failed the page on a NUL, and read a lone
        // surrogate as '?', so that the sagas of node "n-?" were left out in place of those of "n-\uD800". No store
        // holds such a node id or saga id (each refuses it: StoredKeys), so no such query is ever right.
        for (String bad : new String[]{"n-\0", "n-\uD800", "n-\uDC00x"}) {
            ConfigurationException owner = assertThrows(ConfigurationException.class,
                    () -> RecoveryQuery.firstPage(null, Set.of("n-1", bad), 10));
            assertTrue(owner.getMessage().startsWith("excluded owner must not contain"), owner.getMessage());
            ConfigurationException position = assertThrows(ConfigurationException.class,
                    () -> new RecoveryQuery.Position(T0, "s-" + bad));
            assertTrue(position.getMessage().startsWith("saga id must not contain"), position.getMessage());
        }
        String emoji = "n-\uD83D\uDE00";
        assertEquals(Set.of(emoji), RecoveryQuery.firstPage(null, Set.of(emoji), 10).excludedOwners());
        assertEquals(emoji, new RecoveryQuery.Position(T0, emoji).sagaId());
    }
}
