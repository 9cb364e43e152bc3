package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kit closes what it created for a run (its orchestrator, bus, transport, virtual clock and executor) once
 * the run is finished, and after each scenario of a crash exploration: they used to be left open, so the
 * executor's threads built up over a test suite. What a report answers stays readable after that.
 */
class SagaTestKitCloseTest {
    record Order(String id) {
    }

    /** Services whose calls complete on the environment's executor; remembers the environments and threads used. */
    static final class Shop implements AutoCloseable {
        final SagaTestEnvironment env;
        final List<Thread> threads = new CopyOnWriteArrayList<>();
        boolean closed;

        Shop(SagaTestEnvironment env) {
            this.env = env;
        }

        <T> CompletableFuture<T> call(T result) {
            return CompletableFuture.supplyAsync(() -> {
                threads.add(Thread.currentThread());
                return result;
            }, env.executor());
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    private static SagaDefinition<Order> definition(Shop shop) {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").asyncAction((order, ctx) -> shop.call(order))
                .asyncCompensation((order, ctx) -> shop.call(null)).compensationRetry(RetryPolicy.NONE)
                .step("pay").action((order, ctx) -> order)
                .build();
    }

    private static boolean isClosed(SagaTestEnvironment env) {
        try {
            env.executor().execute(() -> { });
            return false;
        } catch (RejectedExecutionException e) {
            return true;
        }
    }

    @Test
    void aFinishedRunClosesWhatTheKitCreatedAndStaysReadable() throws InterruptedException {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::definition, new Order("o-1"))
                .whenRun()
                .expectCompleted();

        assertTrue(isClosed(report.environment()), "the environment of a finished run is closed");
        for (Thread thread : report.fixture().threads) {
            thread.join(Duration.ofSeconds(10).toMillis());
            assertFalse(thread.isAlive(), "thread " + thread.getName() + " of the environment's executor left running");
        }
        assertFalse(report.fixture().closed, "the fixture is the application's: the kit does not close it");
        // Everything a report answers still reads after the run.
        report.expectSteps("reserve", "pay");
        assertEquals(SagaOutcome.COMPLETED, report.result().outcome());
        assertEquals(2, report.invocations().size());
        assertFalse(report.history().isEmpty());
        assertTrue(report.sequenceDiagram().contains("reserve"));
        assertEquals(0, report.environment().scheduler().pendingTasks());
        assertEquals(0, report.environment().transport().pendingCount());
        assertEquals(1, report.orchestrator().findByStatus(SagaStatus.COMPLETED).size());
    }

    @Test
    void aRunThatNeedsAttentionStaysOpenForTheOperatorCallsAndClosesWhenItFinishes() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::definition, new Order("o-1"))
                .failStep("pay", FailureMode.always())
                .failCompensation("reserve", FailureMode.once())
                .whenRun()
                .expectNeedsAttention();
        assertFalse(isClosed(report.environment()));

        report.retryCompensation().expectCompensated();

        assertTrue(isClosed(report.environment()));
    }

    @Test
    void aRunLeftOpenKeepsNoIdleThreadOfTheExecutor() throws InterruptedException {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::definition, new Order("o-1"))
                .failStep("pay", FailureMode.always())
                .failCompensation("reserve", FailureMode.once())
                .whenRun()
                .expectNeedsAttention();
        assertFalse(isClosed(report.environment()), "a run that needs attention stays open");

        assertFalse(report.fixture().threads.isEmpty());
        for (Thread thread : report.fixture().threads) {
            assertTrue(thread.isDaemon(), "thread " + thread.getName() + " would keep the JVM alive");
            // Its task ended before whenRun() returned: the thread ends with it, not after an idle keep-alive.
            thread.join(Duration.ofSeconds(10).toMillis());
            assertFalse(thread.isAlive(), "thread " + thread.getName() + " of an open run's executor left idle");
        }
        report.close();
    }

    @Test
    void closeClosesARunThatHasNotFinished() {
        SagaRunReport<Shop, Order> report;
        try (SagaRunReport<Shop, Order> started = SagaTestKit.given(Shop::new, env -> SagaDefinition.builder("waiting", Order.class)
                        .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>()).build(), new Order("o-1"))
                .whenStarted()) {
            report = started;
            assertFalse(isClosed(report.environment()));
        }

        assertTrue(isClosed(report.environment()));
        assertEquals(SagaStatus.RUNNING, report.status());
        assertThrows(IllegalStateException.class, report::cancel, "a closed run cannot be driven");
    }

    record Shipped(String id) {
    }

    @Test
    void aRunWhoseOrchestratorIsRefusedAtBuildLeavesItsEnvironmentClosed() {
        List<SagaTestEnvironment> environments = new CopyOnWriteArrayList<>();
        SagaTestKit<Shop, Order> kit = SagaTestKit.given(env -> {
            environments.add(env);
            return new Shop(env);
        }, shop -> SagaDefinition.builder("shop", Order.class)
                .step("ship").command("shipments", (order, ctx) -> order).onReply(Shipped.class, (order, reply) -> order)
                .build(), new Order("o-1")); // the kit's empty registry cannot decode Shipped: build() refuses

        ConfigurationException refused = assertThrows(ConfigurationException.class, kit::whenRun);

        assertTrue(refused.getMessage().contains(Shipped.class.getName()), refused.getMessage());
        SagaTestEnvironment env = environments.get(0);
        assertTrue(isClosed(env), "the executor of a run refused at build left open");
        assertTrue(env.transport().send(Message.builder("orders").type("order").build()).toCompletableFuture()
                .isCompletedExceptionally(), "the transport of a run refused at build left open");
    }

    @Test
    void aRunThatFinishesWhileItIsStartedIsClosedByWhenStarted() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::definition, new Order("o-1"))
                .whenStarted(); // every step ends while it starts (on the executor the kit waits for)

        report.expectCompleted().expectSteps("reserve", "pay");
        assertTrue(report.isClosed(), "a run finished when whenStarted() returned left open");
        assertTrue(isClosed(report.environment()), "the environment of a run finished by whenStarted() left open");
        assertEquals(SagaOutcome.COMPLETED, report.result().outcome());
        assertSame(report, report.settle().advance(Duration.ofMinutes(1)), "nothing is left to settle in a finished run");
        report.expectCompleted();
        assertThrows(IllegalStateException.class, report::cancel, "a closed run cannot be driven");
    }

    @Test
    void aRunThatFinishesWhileTheClockIsAdvancedIsClosedByAdvance() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, shop -> SagaDefinition.builder("shop", Order.class)
                        .step("reserve").asyncAction((order, ctx) -> shop.call(order))
                        .asyncCompensation((order, ctx) -> shop.call(null)).compensationRetry(RetryPolicy.NONE)
                        .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                        .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE) // compensated once it times out
                        .build(), new Order("o-1"))
                .whenStarted();
        report.advance(Duration.ofSeconds(59)).expectStatus(SagaStatus.RUNNING);
        assertFalse(report.isClosed(), "a running saga's run stays open");

        report.advance(Duration.ofSeconds(1)).expectCompensated().expectCompensations("reserve");

        assertTrue(report.isClosed(), "a run finished when advance() returned left open");
        assertTrue(isClosed(report.environment()), "the environment of a run finished by advance() left open");
    }

    @Test
    void aCallRefusedForTheSagasStateChangesNothingAndLeavesTheRunOpenForTheTestToGoOn() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::definition, new Order("o-1"))
                .failStep("pay", FailureMode.always())
                .failCompensation("reserve", FailureMode.once())
                .whenRun()
                .expectNeedsAttention();
        int transitions = report.history().size();

        SagaException notCancellable = assertThrows(SagaException.class, report::cancel);
        SagaException notSkippable = assertThrows(SagaException.class, () -> report.skipCompensation("pay"));
        assertThrows(ConfigurationException.class, () -> report.skipCompensation("ship"));

        assertTrue(notCancellable.getMessage().contains("FAILED_NEEDS_ATTENTION"), notCancellable.getMessage());
        assertTrue(notSkippable.getMessage().contains("only a failed compensation"), notSkippable.getMessage());
        assertFalse(report.isClosed(), "a refused call closed the run");
        assertFalse(isClosed(report.environment()), "a refused call closed the run's environment");
        assertEquals(transitions, report.history().size(), "a refused call changed the saga");
        report.retryCompensation().expectCompensated().expectCompensations("reserve"); // the test goes on
        assertTrue(report.isClosed());
    }

    @Test
    void aCancelRefusedPastThePivotLeavesTheRunOpenForTheTestToGoOn() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, shop -> SagaDefinition.builder("shop", Order.class)
                        .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> { })
                        .pivot("charge").action((order, ctx) -> order)
                        .retriable("ship").action((order, ctx) -> order)
                        .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMinutes(1))
                                .maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                        .build(), new Order("o-1"))
                .failStep("ship", FailureMode.once())
                .whenStarted(); // the first attempt to ship failed: its retry is a minute away

        SagaException refused = assertThrows(SagaException.class, report::cancel);
        assertThrows(SagaException.class, report::retryCompensation);
        assertThrows(SagaException.class, report::markResolved);

        assertTrue(refused.getMessage().contains("pivot"), refused.getMessage());
        assertFalse(report.isClosed(), "a refused call closed the run");
        report.advance(Duration.ofMinutes(1)).expectCompleted().expectAttempts("ship", 2); // the test goes on
        assertTrue(report.isClosed());
    }

    /** A saga that waits for ever, so it is compensated after a minute, and whose release throws an Error. */
    private static SagaDefinition<Order> waitingWithAFailingRelease(Shop shop) {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> {
                    throw new AssertionError("release failed");
                })
                .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE) // compensated once it times out
                .build();
    }

    @Test
    void aCancelWhoseCompensationThrowsAnErrorClosesTheRunAndThrowsTheError() {
        List<SagaTestEnvironment> environments = new CopyOnWriteArrayList<>();
        SagaTestKit<Shop, Order> kit = SagaTestKit.given(env -> {
            environments.add(env);
            return new Shop(env);
        }, SagaTestKitCloseTest::waitingWithAFailingRelease, new Order("o-1"));

        // In a chain the report is lost with the exception: nothing else could close the run.
        AssertionError error = assertThrows(AssertionError.class, () -> kit.whenStarted().cancel());

        assertEquals("release failed", error.getMessage());
        assertTrue(isClosed(environments.get(0)), "the run of a cancel that threw left open");
    }

    @Test
    void aSettleThatFailsClosesTheRunAndThrowsTheFailure() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::waitingWithAFailingRelease,
                new Order("o-1")).whenStarted();

        AssertionError error = assertThrows(AssertionError.class, report::settle);

        assertEquals("release failed", error.getMessage());
        assertTrue(report.isClosed(), "the run of a settle that threw left open");
        assertTrue(isClosed(report.environment()), "the environment of a settle that threw left open");
        assertEquals(SagaStatus.COMPENSATING, report.status()); // still readable
    }

    @Test
    void anAdvanceThatFailsClosesTheRunAndThrowsTheFailure() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, SagaTestKitCloseTest::waitingWithAFailingRelease,
                new Order("o-1")).whenStarted();

        AssertionError error = assertThrows(AssertionError.class, () -> report.advance(Duration.ofMinutes(1)));

        assertEquals("release failed", error.getMessage());
        assertTrue(report.isClosed(), "the run of an advance that threw left open");
        assertTrue(isClosed(report.environment()), "the environment of an advance that threw left open");
    }

    /** Reserves and holds; the release throws an Error, the hold's compensation is injected to fail once. */
    private static SagaTestKit<Shop, Order> needsAttentionBeforeAFailingRelease() {
        return SagaTestKit.given(Shop::new, shop -> SagaDefinition.builder("shop", Order.class)
                        .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> {
                            throw new AssertionError("release failed");
                        })
                        .step("hold").action((order, ctx) -> order).compensation((order, ctx) -> { })
                        .compensationRetry(RetryPolicy.NONE)
                        .step("pay").action((order, ctx) -> order)
                        .build(), new Order("o-1"))
                .failStep("pay", FailureMode.always())
                .failCompensation("hold", FailureMode.once());
    }

    @Test
    void aRetryOfTheCompensationsThatFailsClosesTheRunAndThrowsTheFailure() {
        SagaRunReport<Shop, Order> report = needsAttentionBeforeAFailingRelease().whenRun().expectNeedsAttention();

        AssertionError error = assertThrows(AssertionError.class, report::retryCompensation);

        assertEquals("release failed", error.getMessage());
        assertTrue(report.isClosed(), "the run of a retryCompensation() that threw left open");
        assertTrue(isClosed(report.environment()), "the environment of a retryCompensation() that threw left open");
    }

    @Test
    void aSkipOfACompensationThatFailsClosesTheRunAndThrowsTheFailure() {
        SagaRunReport<Shop, Order> report = needsAttentionBeforeAFailingRelease().whenRun().expectNeedsAttention();

        AssertionError error = assertThrows(AssertionError.class, () -> report.skipCompensation("hold"));

        assertEquals("release failed", error.getMessage());
        assertTrue(report.isClosed(), "the run of a skipCompensation() that threw left open");
        assertTrue(isClosed(report.environment()), "the environment of a skipCompensation() that threw left open");
    }

    /*
     * A SimulatedCrash the application throws is not the run's crash point: nothing recovers the saga from it, so
     * the kit throws it as any other Error (it used to swallow it while starting and while running a timer,
     * leaving the saga RUNNING with no run driving it and the test told nothing).
     */

    @Test
    void aSimulatedCrashTheApplicationThrowsWhileTheSagaStartsClosesTheRunAndIsThrown() {
        List<SagaTestEnvironment> environments = new CopyOnWriteArrayList<>();
        SagaTestKit<Shop, Order> kit = SagaTestKit.given(env -> {
            environments.add(env);
            return new Shop(env);
        }, shop -> SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> {
                    throw new SimulatedCrash("thrown by the application");
                })
                .build(), new Order("o-1"));

        SimulatedCrash crash = assertThrows(SimulatedCrash.class, kit::whenRun);

        assertEquals("thrown by the application", crash.getMessage());
        assertTrue(isClosed(environments.get(0)), "the run of a start that threw left open");
    }

    @Test
    void aSimulatedCrashTheApplicationThrowsFromATimerClosesTheRunAndIsThrown() {
        SagaRunReport<Shop, Order> report = SagaTestKit.given(Shop::new, shop -> SagaDefinition.builder("shop", Order.class)
                        .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> {
                            throw new SimulatedCrash("thrown by the application");
                        })
                        .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                        .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE)
                        .build(), new Order("o-1"))
                .whenStarted();

        SimulatedCrash crash = assertThrows(SimulatedCrash.class, () -> report.advance(Duration.ofMinutes(1)));

        assertEquals("thrown by the application", crash.getMessage());
        assertTrue(report.isClosed(), "the run of an advance that threw left open");
        assertTrue(isClosed(report.environment()), "the environment of an advance that threw left open");
    }

    @Test
    void anExplorationClosesTheEnvironmentOfEveryScenario() {
        List<SagaTestEnvironment> environments = new CopyOnWriteArrayList<>();

        ExplorationReport exploration = SagaCrashExplorer.forSaga(env -> {
            environments.add(env);
            return new Shop(env);
        }, SagaTestKitCloseTest::definition, new Order("o-1")).explore();

        assertTrue(exploration.scenarios().size() > 5, exploration.scenarios().toString());
        // A run per scenario, and the probe of a cancellation once started (no scenario: this saga finishes as it starts).
        assertEquals(exploration.scenarios().size() + 1, environments.size());
        for (SagaTestEnvironment env : environments) {
            assertTrue(isClosed(env), "an explored scenario's environment left open");
        }
        assertDoesNotThrow(exploration::violations);
    }
}
