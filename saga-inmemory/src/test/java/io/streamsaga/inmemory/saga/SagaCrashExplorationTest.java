package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.OrderSagaFixture.OrderData;
import io.streamsaga.inmemory.saga.OrderSagaFixture.Services;
import io.streamsaga.inmemory.saga.TripSagaFixture.Trip;
import io.streamsaga.inmemory.saga.TripSagaFixture.TripData;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SagaCrashExplorationTest {

    @Test
    void orderSagaKeepsItsInvariantsAtEveryFailurePointAndCrash() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(env -> new Services(), OrderSagaFixture::definition, OrderData.of("alice", 120, "book", "pen"))
                .invariant(OrderSagaFixture::consistent)
                .explore();

        assertTrue(report.violations().isEmpty());
        assertTrue(report.crashScenarios() >= 20, "crash scenarios: " + report.crashScenarios());
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().equals("compensation of create-order fails once "
                + "(schedule-shipping fails)")), "scenarios: " + report.scenarios());
    }

    @Test
    void sagaWithAParallelGroupAndARemoteStepKeepsItsInvariantsAtEveryFailurePointAndCrash() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(TripSagaFixture::trip, TripSagaFixture::definition, new TripData("bob", null, null, null, false))
                .types(TripSagaFixture.types())
                .invariant(TripSagaFixture::consistent)
                .explore();

        assertTrue(report.violations().isEmpty());
        assertTrue(report.crashScenarios() >= 20, "crash scenarios: " + report.crashScenarios());
    }

    /** A compensation that ignores its idempotency key releases twice when recovery re-runs it. */
    static final class CarelessInventory {
        final Set<String> reserved = new HashSet<>();
        int releases;
    }

    static SagaDefinition<OrderData> careless(CarelessInventory inv) {
        return SagaDefinition.builder("careless-saga", OrderData.class)
                .step("reserve").action((d, ctx) -> {
                    inv.reserved.add(ctx.idempotencyKey());
                    return d;
                }).compensation((d, ctx) -> inv.releases++)
                .step("charge").action((d, ctx) -> d)
                .build();
    }

    @Test
    void explorationCatchesACompensationThatIgnoresTheIdempotencyKey() {
        SagaCrashExplorer<CarelessInventory, OrderData> explorer = SagaCrashExplorer.forSaga(env -> new CarelessInventory(),
                SagaCrashExplorationTest::careless,
                OrderData.of("carol", 10, "cup"))
                .invariant((inv, run) -> assertTrue(inv.releases <= 1, "released " + inv.releases + " times"));

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertTrue(error.getMessage().contains("released 2 times"), error.getMessage());
        assertTrue(error.getMessage().contains("crash before write"), error.getMessage());
    }

    /**
     * Without an invariant the explorer sees only the store's record and the idempotency keys it passed: the same
     * careless compensation releases twice after a crash before its write, and the exploration passes.
     */
    @Test
    void withoutAnInvariantTheExplorerDoesNotSeeACompensationThatReleasesTwice() {
        List<CarelessInventory> fixtures = new ArrayList<>();
        ExplorationReport report = SagaCrashExplorer.forSaga(env -> {
                    CarelessInventory inv = new CarelessInventory();
                    fixtures.add(inv);
                    return inv;
                },
                SagaCrashExplorationTest::careless,
                OrderData.of("carol", 10, "cup"))
                .explore();

        assertEquals(List.of(), report.violations());
        assertTrue(fixtures.stream().anyMatch(inv -> inv.releases == 2), "no scenario released twice");
    }

    @Test
    void explorationRunsEveryScenarioKind() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(env -> new Services(), OrderSagaFixture::definition, OrderData.of("dave", 5, "tea"))
                .invariant(OrderSagaFixture::consistent)
                .explore();
        long stepFailures = report.scenarios().stream().filter(s -> s.name().startsWith("step ")).count();
        long compensationFailures = report.scenarios().stream().filter(s -> s.name().startsWith("compensation of ")).count();
        assertEquals(4, stepFailures);
        assertEquals(3, compensationFailures);
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().startsWith("crash after write")));
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().startsWith("crash before write")));
    }
}
