package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SagaMessagesCommandIdTest {
    private static final Instant STARTED = Instant.parse("2026-01-01T00:00:00.123456789Z");

    @Test
    void aCommandIdHoldsTheSagaItsStartToTheMicrosecondTheStepThePhaseAndTheAttempt() {
        assertEquals("s-1/2026-01-01T00:00:00.123456Z/pay/2", SagaMessages.commandId("s-1", STARTED, "pay", false, 2));
        assertEquals("s-1/2026-01-01T00:00:00.123456Z/pay/compensation/1",
                SagaMessages.commandId("s-1", STARTED, "pay", true, 1));
    }

    @Test
    void aMissingSagaIdStartOrStepOrAnAttemptBelowOneIsRefusedNamingItNotMadeIntoAnId() {
        // It gave "null/..." for a null saga id or step, and a bare NullPointerException for a null start.
        assertRefusedNaming("sagaId", () -> SagaMessages.commandId(null, STARTED, "pay", false, 1));
        assertRefusedNaming("sagaId", () -> SagaMessages.commandId(" ", STARTED, "pay", false, 1));
        assertRefusedNaming("createdAt", () -> SagaMessages.commandId("s-1", null, "pay", false, 1));
        assertRefusedNaming("step", () -> SagaMessages.commandId("s-1", STARTED, null, false, 1));
        assertRefusedNaming("step", () -> SagaMessages.commandId("s-1", STARTED, "", false, 1));
        assertRefusedNaming("attempt", () -> SagaMessages.commandId("s-1", STARTED, "pay", false, 0));
    }

    private static void assertRefusedNaming(String argument, Runnable call) {
        ConfigurationException refusal = assertThrows(ConfigurationException.class, call::run);
        assertTrue(refusal.getMessage().contains(argument), refusal.getMessage());
    }
}
