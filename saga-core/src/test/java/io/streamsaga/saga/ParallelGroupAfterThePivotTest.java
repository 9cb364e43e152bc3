package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A parallel group after the pivot is rejected with advice the user can follow. */
class ParallelGroupAfterThePivotTest {
    record Data(String id) {
    }

    @Test
    void aParallelGroupAfterThePivotIsRejectedWithoutAdvisingRetriableForAMember() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> SagaDefinition.builder("trip", Data.class)
                .pivot("charge").action((d, c) -> d)
                .parallel(g -> {
                    g.step("notify-hotel").action((d, c) -> d);
                    g.step("notify-airline").action((d, c) -> d);
                })
                .build());

        // retriable("notify-hotel") cannot be declared inside a group: members are always compensatable.
        assertFalse(e.getMessage().contains("retriable(\"notify-hotel\")"), e.getMessage());
        assertTrue(e.getMessage().contains("parallel group"), e.getMessage());
        assertTrue(e.getMessage().contains("'notify-hotel'") && e.getMessage().contains("'charge'"), e.getMessage());
    }
}
