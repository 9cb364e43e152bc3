package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code cancel()} while an asynchronous action is in flight waits for that action's outcome (docs/sagas.md,
 * "Cancel": an action in flight finishes first), so that what it did is compensated: the saga is
 * {@code COMPENSATING} until the stage completes, and compensates then. With no {@code timeout} on the step
 * nothing ends that wait: a stage that never completes leaves the saga {@code COMPENSATING} for ever, however
 * long the clock runs. This pins the promise; a step that may hang needs a timeout.
 */
class CancelWhileAnAsyncActionWithoutTimeoutRunsTest {
    record Order(String id) {
    }

    /** The application: the stage of the charge, completed only when the test says so. */
    static final class Payments {
        final CompletableFuture<Order> charge = new CompletableFuture<>();
    }

    private static SagaDefinition<Order> definition(Payments payments) {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> { })
                .step("charge").asyncAction((order, ctx) -> payments.charge).compensation((order, ctx) -> { })
                .build();
    }

    private static SagaDefinition<Order> withTimeout(Payments payments) {
        return SagaDefinition.builder("shop", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> { })
                .step("charge").asyncAction((order, ctx) -> payments.charge).compensation((order, ctx) -> { })
                .timeout(Duration.ofMinutes(1))
                .build();
    }

    @Test
    void cancelWaitsForTheInFlightActionWithoutTimeoutForEverThenCompensatesOnceItCompletes() {
        try (SagaRunReport<Payments, Order> run = SagaTestKit.given(env -> new Payments(),
                CancelWhileAnAsyncActionWithoutTimeoutRunsTest::definition, new Order("o-1")).whenStarted()) {
            run.expectStatus(SagaStatus.RUNNING).expectSteps("reserve");

            run.cancel().advance(Duration.ofDays(365));

            run.expectStatus(SagaStatus.COMPENSATING).expectCompensations(); // waits for the charge's outcome
            assertEquals(0, run.environment().scheduler().pendingTasks(), "no timer ends the wait");

            run.fixture().charge.complete(new Order("o-1")); // the action finished: it took effect
            run.settle()
                    .expectCompensated()
                    .expectSteps("reserve", "charge")
                    .expectCompensations("charge", "reserve");
        }
    }

    @Test
    void withATimeoutTheWaitOfTheCancelEndsWhenItFiresAndTheUncertainChargeIsCompensatedToo() {
        SagaRunReport<Payments, Order> run = SagaTestKit.given(env -> new Payments(),
                CancelWhileAnAsyncActionWithoutTimeoutRunsTest::withTimeout, new Order("o-1")).whenStarted();
        Instant cancelledAt = run.environment().scheduler().now();

        run.cancel() // settles: the clock jumps to the charge's timeout, which ends the wait
                .expectCompensated()
                .expectSteps("reserve")
                .expectCompensations("charge", "reserve"); // the charge may have taken effect

        assertEquals(cancelledAt.plus(Duration.ofMinutes(1)), run.environment().scheduler().now());
        assertEquals(1, run.history().stream().filter(t -> t.type() == TransitionType.STEP_TIMED_OUT).count());
    }
}
