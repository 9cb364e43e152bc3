package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * {@code whenStarted()} settles what is due at the instant the saga starts, as {@code settle()} does, without
 * moving the clock: it used to deliver the messages only, so a timer due at once (a stage completed from a task on
 * the environment's scheduler with no delay, which failed the step's first attempt and then completed its
 * zero-backoff retry) was left pending although nothing was in the future.
 */
class SagaTestKitWhenStartedTest {
    record Order(String id) {
    }

    /** An action whose stage completes from a task on the scheduler due at once: it fails the first attempt. */
    private static SagaDefinition.StepBuilder<Order> reserveFailingOnceFromATimer(SagaTestEnvironment env) {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").asyncAction((order, ctx) -> {
                    CompletableFuture<Order> reserved = new CompletableFuture<>();
                    env.scheduler().schedule(Duration.ZERO, () -> {
                        if (ctx.attempt() == 1) {
                            reserved.completeExceptionally(new IllegalStateException("stock busy"));
                        } else {
                            reserved.complete(order);
                        }
                    });
                    return reserved;
                })
                .retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build());
    }

    @Test
    void aStepThatFailsOnceFromATimerDueNowIsRetriedWithoutBackoffAndCompletesBeforeWhenStartedReturns() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> env,
                        env -> reserveFailingOnceFromATimer(env).build(), new Order("o-1"))
                .whenStarted();

        run.expectCompleted().expectAttempts("reserve", 2).expectSteps("reserve");
    }

    @Test
    void whenStartedRunsWhatIsDueNowWithoutMovingTheClockAndLeavesLaterTimersPending() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> env,
                        env -> reserveFailingOnceFromATimer(env)
                                .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                                .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE)
                                .build(), new Order("o-1"))
                .whenStarted();
        Instant start = Instant.parse("2026-01-01T00:00:00Z"); // the environment's virtual clock starts there

        run.expectStatus(SagaStatus.RUNNING).expectAttempts("reserve", 2).expectSteps("reserve");
        assertFalse(run.isClosed(), "a running saga's run stays open");
        assertEquals(start, run.environment().scheduler().now(), "whenStarted() moved the clock");
        assertEquals(1, run.environment().scheduler().pendingTasks(), "the step's timeout, a minute away");
        assertEquals(start.plus(Duration.ofMinutes(1)), run.environment().scheduler().nextDueAt().orElseThrow());
        run.close();
    }
}
