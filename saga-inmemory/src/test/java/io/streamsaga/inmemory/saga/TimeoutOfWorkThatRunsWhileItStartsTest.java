package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.FailureMode;
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
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A step's timeout counts from the start of its attempt, also when the work runs while the engine starts it: a
 * parallel member's action or compensation on a parallel executor that runs it on the calling thread (the test
 * kit's {@code Runnable::run}, a pool's caller-runs policy), an asynchronous action or compensation that does its
 * work before it returns its stage. Such work taking longer than the timeout (here on the test kit's virtual clock,
 * through {@code env.scheduler().sleep}) times out as it does on an executor of its own.
 */
class TimeoutOfWorkThatRunsWhileItStartsTest {
    record Trip(String id) {
    }

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Duration SLOW = Duration.ofMinutes(1);

    /** The application: what ran, in order; its slow work takes {@link #SLOW} of the kit's virtual time. */
    static final class Services {
        final SagaTestEnvironment env;
        final List<String> ran = new CopyOnWriteArrayList<>();

        Services(SagaTestEnvironment env) {
            this.env = env;
        }

        Trip slowly(String what, Trip trip) throws InterruptedException {
            return taking(SLOW, what, trip); // a call that takes a minute
        }

        Trip taking(Duration time, String what, Trip trip) throws InterruptedException {
            env.scheduler().sleep(time);
            ran.add(what);
            return trip;
        }
    }

    private static SagaDefinition<Trip> slowMember(Services services) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("order").action((trip, ctx) -> trip).compensation((trip, ctx) -> services.ran.add("undo order"))
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> trip)
                            .compensation((trip, ctx) -> services.ran.add("undo hotel"));
                    group.step("flight").action((trip, ctx) -> services.slowly("flight", trip))
                            .compensation((trip, ctx) -> services.ran.add("undo flight"))
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                })
                .step("confirm").action((trip, ctx) -> trip)
                .build();
    }

    @Test
    void aParallelMemberTakingLongerThanItsTimeoutOnAnExecutorRunningItInlineTimesOutAndTheSagaCompensates() {
        SagaRunReport<Services, Trip> run = SagaTestKit.given(Services::new,
                TimeoutOfWorkThatRunsWhileItStartsTest::slowMember, new Trip("t-1")).whenRun();

        run.expectCompensated().expectFailureAt("flight");
        assertTrue(run.history().stream().anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT
                && t.step().equals("flight")), run.history().toString());
        // timed out, its effect uncertain: compensated with the group's other member and the step before
        run.expectCompensations("hotel", "flight", "order");
    }

    @Test
    void anAsynchronousActionThatDoesItsWorkBeforeReturningItsStageAndTakesLongerThanItsTimeoutTimesOut() {
        SagaRunReport<Services, Trip> run = SagaTestKit.given(Services::new, services ->
                SagaDefinition.builder("trip", Trip.class)
                        .step("order").action((trip, ctx) -> trip).compensation((trip, ctx) -> services.ran.add("undo order"))
                        .step("flight")
                        .asyncAction((trip, ctx) -> CompletableFuture.completedFuture(services.slowly("flight", trip)))
                        .compensation((trip, ctx) -> services.ran.add("undo flight"))
                        .timeout(TIMEOUT).retry(RetryPolicy.NONE)
                        .step("confirm").action((trip, ctx) -> trip)
                        .build(), new Trip("t-2")).whenRun();

        run.expectCompensated().expectFailureAt("flight");
        assertEquals(List.of("flight", "undo flight", "undo order"), run.fixture().ran);
    }

    @Test
    void aParallelMembersCompensationTakingLongerThanItsTimeoutOnAnExecutorRunningItInlineFailsItsAttempt() {
        SagaRunReport<Services, Trip> run = SagaTestKit.given(Services::new, services ->
                SagaDefinition.builder("trip", Trip.class)
                        .parallel(group -> {
                            group.step("hotel").action((trip, ctx) -> trip)
                                    .compensation((trip, ctx) -> services.ran.add("undo hotel"));
                            group.step("flight").action((trip, ctx) -> trip)
                                    .compensation((trip, ctx) -> services.slowly("undo flight", trip))
                                    .compensationRetry(RetryPolicy.NONE).timeout(TIMEOUT);
                        })
                        .step("pay").action((trip, ctx) -> trip)
                        .build(), new Trip("t-3"))
                .failStep("pay", FailureMode.always())
                .whenRun();

        // the undo took a minute against its ten seconds: its attempt failed, and its policy gives up
        run.expectNeedsAttention();
        assertTrue(run.history().stream().anyMatch(t -> t.type() == TransitionType.COMPENSATION_FAILED
                && t.step().equals("flight") && t.detail().contains("timed out")), run.history().toString());
    }

    @Test
    void anAsynchronousActionWhoseOutcomeComesAtExactlyItsDeadlineTimesOutAsTheTimerDueThenWouldHaveMadeIt() {
        // The outcome at the deadline itself, the timer armed for that instant not run yet: the timeout's, as a remote
        // step's reply at its deadline is, so that which of the two runs first does not decide.
        SagaRunReport<Services, Trip> run = SagaTestKit.given(Services::new, services ->
                SagaDefinition.builder("trip", Trip.class)
                        .step("order").action((trip, ctx) -> trip).compensation((trip, ctx) -> services.ran.add("undo order"))
                        .step("flight")
                        .asyncAction((trip, ctx) -> CompletableFuture.completedFuture(services.taking(TIMEOUT, "flight", trip)))
                        .compensation((trip, ctx) -> services.ran.add("undo flight"))
                        .timeout(TIMEOUT).retry(RetryPolicy.NONE)
                        .step("confirm").action((trip, ctx) -> trip)
                        .build(), new Trip("t-4")).whenRun();

        run.expectCompensated().expectFailureAt("flight");
        assertTrue(run.history().stream().anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT
                && t.step().equals("flight")), run.history().toString());
    }

    @Test
    void aParallelMembersCompensationWhoseOutcomeComesAtExactlyItsDeadlineFailsItsAttempt() {
        SagaRunReport<Services, Trip> run = SagaTestKit.given(Services::new, services ->
                SagaDefinition.builder("trip", Trip.class)
                        .parallel(group -> {
                            group.step("hotel").action((trip, ctx) -> trip)
                                    .compensation((trip, ctx) -> services.ran.add("undo hotel"));
                            group.step("flight").action((trip, ctx) -> trip)
                                    .compensation((trip, ctx) -> services.taking(TIMEOUT, "undo flight", trip))
                                    .compensationRetry(RetryPolicy.NONE).timeout(TIMEOUT);
                        })
                        .step("pay").action((trip, ctx) -> trip)
                        .build(), new Trip("t-5"))
                .failStep("pay", FailureMode.always())
                .whenRun();

        run.expectNeedsAttention();
        assertTrue(run.history().stream().anyMatch(t -> t.type() == TransitionType.COMPENSATION_FAILED
                && t.step().equals("flight") && t.detail().contains("timed out")), run.history().toString());
    }
}
