package io.streamsaga.samples.strangler;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StranglerMigrationSampleTest {

    @Test
    void routesMoveOneByOneShadowCatchesTheBugAndLegacyEventsAreSyncedOnce() throws Exception {
        StranglerMigrationSample.Result result = StranglerMigrationSample.run();

        assertEquals(1, result.mismatches().size());
        assertEquals("GET /orders", result.mismatches().get(0).route());
        assertEquals("orders {o-1=125, o-2=300}", result.mismatches().get(0).legacy());
        assertEquals("orders {o-1=120, o-2=300}", result.mismatches().get(0).modern());
        assertEquals(3, result.syncedFromLegacy()); // o-1, o-2, o-4 (globex still on legacy in phase 4)
        assertEquals(1, result.duplicatesSkipped()); // the resent o-1, recognised by its order id
        assertEquals(0, result.legacyCallsAfterRetirement());
        assertEquals(Map.of("o-1", 125L, "o-2", 300L, "o-3", 80L, "o-4", 60L, "o-5", 40L), result.newServiceOrders());
        assertTrue(result.phases().get(0).contains("o-1=125"));
    }
}
