package io.streamsaga.samples.kappa;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KappaReprocessingSampleTest {

    @Test
    void reprocessedVersionReplacesTheBuggyOneOnlyAfterCatchingUp() {
        KappaReprocessingSample.Result result = KappaReprocessingSample.run();
        assertEquals(500, result.revenueV1());
        assertEquals(500, result.revenueDuringReplay());
        assertEquals(List.of("0/10 (0.0%)", "10/10 (100.0%)"), result.progressReports());
        assertEquals(450, result.revenueAfterSwap());
        assertEquals(2, result.versionAfterSwap());
    }
}
