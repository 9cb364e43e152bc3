package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kit tells its store's crash point from a {@link SimulatedCrash} the application's code throws also once the
 * run crashed and was recovered: it used to take any SimulatedCrash for its own once its store had crashed, so
 * the application's was swallowed, the saga left half-compensated with no run driving it and the test told
 * nothing.
 */
class ApplicationCrashAfterRecoveryTest {
    record Order(String id) {
    }

    /** Reserves (its release throws the application's SimulatedCrash), then waits a minute and is compensated. */
    private static SagaDefinition<Order> reserveThenTimeOut() {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> {
                    throw new SimulatedCrash("thrown by the application");
                })
                .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE) // compensated once it times out
                .build();
    }

    /** Reserves (its release throws the application's SimulatedCrash), then holds, retried a minute after it fails. */
    private static SagaDefinition<Order> reserveThenHoldRetriedLater() {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> {
                    throw new SimulatedCrash("thrown by the application");
                })
                .step("hold").action((order, ctx) -> order)
                .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMinutes(1))
                        .maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .build();
    }

    @Test
    void theApplicationsSimulatedCrashFromATimerAfterARecoveredCrashClosesTheRunAndIsThrown() {
        List<SagaTestEnvironment> environments = new CopyOnWriteArrayList<>();
        SagaTestKit<SagaTestEnvironment, Order> kit = SagaTestKit.given(env -> {
            environments.add(env);
            return env;
        }, env -> reserveThenTimeOut(), new Order("o-1"));

        // A crash right after the saga's start is stored, recovered; then the timeout compensates the reservation.
        SimulatedCrash crash = assertThrows(SimulatedCrash.class, () -> kit.run(Map.of(), Map.of(), LostMessages.NONE, 1, false));

        assertEquals("thrown by the application", crash.getMessage());
        assertThrows(RejectedExecutionException.class, () -> environments.get(0).executor().execute(() -> { }),
                "the run of a settle that threw left open");
        assertEquals(SagaStatus.COMPENSATING, environments.get(0).store().find(SagaRunReport.SAGA_ID).orElseThrow().status());
    }

    @Test
    void theApplicationsSimulatedCrashDuringACancelAfterARecoveredCrashClosesTheRunAndIsThrown() {
        // A crash right after the saga's start is stored, recovered; the hold failed once, its retry a minute away.
        SagaRunReport<Void, Order> report = new SagaRunReport<Void, Order>(TypeRegistry.empty(), env -> null,
                fixture -> reserveThenHoldRetriedLater(), Map.of("hold", FailureMode.once()), Map.of(), SettleLimits.DEFAULTS, 1, false)
                .start(new Order("o-1"), false); // whenStarted() with a crash point
        assertTrue(report.crashedAndRecovered());
        report.expectStatus(SagaStatus.RUNNING).expectSteps("reserve").expectAttempts("hold", 1);

        SimulatedCrash crash = assertThrows(SimulatedCrash.class, report::cancel);

        assertEquals("thrown by the application", crash.getMessage());
        assertTrue(report.isClosed(), "the run of a cancel that threw left open");
        assertEquals(SagaStatus.COMPENSATING, report.status());
    }

    @Test
    void theKitsOwnCrashIsStillRecoveredFrom() {
        // The crash at the second write (the hold's outcome lost), and every call of the dead orchestrator after it.
        SagaRunReport<Void, Order> report = new SagaRunReport<Void, Order>(TypeRegistry.empty(), env -> null,
                fixture -> reserveThenHoldRetriedLater(), Map.of(), Map.of(), SettleLimits.DEFAULTS, 2, false)
                .start(new Order("o-1"), true); // whenRun() with a crash point

        assertTrue(report.crashedAndRecovered());
        report.expectCompleted().expectSteps("reserve", "hold");
        assertTrue(report.isClosed());
    }
}
