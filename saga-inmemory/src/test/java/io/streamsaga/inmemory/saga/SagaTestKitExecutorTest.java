package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stages completed on another thread through the environment's executor: the kit waits for them before it moves
 * the virtual clock or returns, so work that takes real time takes no virtual time (it used to be overtaken by
 * the step's timeout, the kit jumping the clock while the work ran, or to finish after whenRun() returned).
 */
class SagaTestKitExecutorTest {
    record Order(String id) {
    }

    /**
     * A warehouse whose calls finish on a thread of the environment's executor, and only once another thread
     * (standing for the remote system) answered: real time passes while the kit settles the run.
     */
    static final class Warehouse {
        private final SagaTestEnvironment env;
        final List<String> calls = new java.util.concurrent.CopyOnWriteArrayList<>();

        Warehouse(SagaTestEnvironment env) {
            this.env = env;
        }

        <T> CompletionStage<T> call(String what, Supplier<T> result) {
            CountDownLatch started = new CountDownLatch(1);
            CountDownLatch answered = new CountDownLatch(1);
            Thread remote = new Thread(() -> {
                awaitQuietly(started);
                answered.countDown();
            }, "remote-warehouse");
            remote.setDaemon(true);
            remote.start();
            return CompletableFuture.supplyAsync(() -> {
                started.countDown();
                awaitQuietly(answered);
                calls.add(what);
                return result.get();
            }, env.executor());
        }

        private static void awaitQuietly(CountDownLatch latch) {
            try {
                latch.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    private static SagaDefinition<Order> definition(Warehouse warehouse, boolean invoiceFails) {
        return SagaDefinition.builder("shipping", Order.class)
                .step("reserve").asyncAction((order, ctx) -> warehouse.call("reserve", () -> order))
                .asyncCompensation((order, ctx) -> warehouse.call("release", () -> null))
                .compensationRetry(RetryPolicy.NONE).timeout(Duration.ofSeconds(30))
                .step("pick").asyncAction((order, ctx) -> warehouse.call("pick", () -> order)).timeout(Duration.ofSeconds(30))
                .asyncCompensation((order, ctx) -> warehouse.call("unpick", () -> null))
                .compensationRetry(RetryPolicy.NONE)
                .step("invoice").action((order, ctx) -> {
                    if (invoiceFails) {
                        throw new IllegalStateException("invoicing down");
                    }
                    return order;
                })
                .build();
    }

    @Test
    void actionsCompletedOnTheEnvironmentsExecutorSettleBeforeTheKitMovesTheClock() {
        SagaRunReport<Warehouse, Order> run = SagaTestKit.given(Warehouse::new, w -> definition(w, false), new Order("o-1"))
                .whenRun()
                .expectCompleted()
                .expectSteps("reserve", "pick", "invoice");

        assertEquals(List.of("reserve", "pick"), run.fixture().calls);
        assertTrue(run.history().stream().noneMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT), run.sequenceDiagram());
    }

    @Test
    void compensationsCompletedOnTheEnvironmentsExecutorSettleInOrderBeforeTheKitReturns() {
        SagaRunReport<Warehouse, Order> run = SagaTestKit.given(Warehouse::new, w -> definition(w, true), new Order("o-2"))
                .whenRun()
                .expectCompensated()
                .expectCompensations("pick", "reserve");

        assertEquals(List.of("reserve", "pick", "unpick", "release"), run.fixture().calls);
    }

    @Test
    void aRunStartedWithoutSettlingHasRecordedTheWorkOfTheExecutor() {
        SagaRunReport<Warehouse, Order> run = SagaTestKit.given(Warehouse::new, w -> definition(w, false), new Order("o-3"))
                .whenStarted();

        run.expectCompleted(); // the clock never moved: the work on the executor took no virtual time
    }

    @Test
    void advanceWaitsForTheExecutorBeforeEachTimerItRunsSoThatAStepsTimeoutCannotOvertakeItsWork() {
        // The first attempt fails (injected), its retry runs at 1 s inside advance(1 min) and hands its work to the
        // executor; the work ends once the kit waits for it, or (were the kit not to) once the step timed out at 11 s.
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> env, env -> {
                    Thread testThread = Thread.currentThread();
                    return SagaDefinition.builder("shipping", Order.class)
                            .step("reserve").asyncAction((order, ctx) -> CompletableFuture.supplyAsync(() -> {
                                await().atMost(Duration.ofSeconds(20)).until(() -> testThread.getState() == Thread.State.TIMED_WAITING
                                        || env.store().history(SagaRunReport.SAGA_ID).stream()
                                        .anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT));
                                return order;
                            }, env.executor()))
                            .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                            .timeout(Duration.ofSeconds(10))
                            .build();
                }, new Order("o-5"))
                .failStep("reserve", FailureMode.once())
                .whenStarted();

        run.advance(Duration.ofMinutes(1))
                .expectCompleted()
                .expectAttempts("reserve", 2);
        assertTrue(run.history().stream().noneMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT), run.sequenceDiagram());
    }

    @Test
    void crashExplorationHoldsWhenTheStagesCompleteOnTheEnvironmentsExecutor() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(Warehouse::new, w -> definition(w, false), new Order("o-4"))
                .explore();

        assertTrue(report.violations().isEmpty(), report.violations().toString());
    }
}
