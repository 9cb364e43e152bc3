package io.streamsaga.samples.lambda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OrderMetricsSampleTest {

    @Test
    void mergedBatchAndRealtimeViewEqualsAFullRecountAtEveryRandomMoment() {
        for (long seed : new long[] {1L, 42L, 20240501L}) {
            OrderMetricsSample.Result result = OrderMetricsSample.run(seed, 400);
            assertTrue(result.checks().size() > 20, "too few checks for seed " + seed);
            assertTrue(result.batchRuns() > 5, "too few batch runs for seed " + seed);
            for (OrderMetricsSample.Check check : result.checks()) {
                assertTrue(check.equal(), "seed " + seed + " step " + check.step() + ": " + check.merged() + " vs " + check.recount());
            }
            assertFalse(result.finalView().days().isEmpty());
            assertFalse(result.lastBatchCovers().isEmpty());
        }
    }
}
