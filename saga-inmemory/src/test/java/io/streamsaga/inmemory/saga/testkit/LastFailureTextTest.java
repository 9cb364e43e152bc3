package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The last failure a wrong-state violation names is written from the transition as recorded: its detail whole when
 * short, cut with its length when huge, left out when the store kept none (not written as "null"), and a time-out's
 * own detail, which says whether the step ran out of time or was settled while the saga compensated.
 */
class LastFailureTextTest {

    private static SagaTransition transition(TransitionType type, String step, int attempt, String detail) {
        return new SagaTransition(SagaRunReport.SAGA_ID, 3, Instant.EPOCH, type, step, attempt, detail);
    }

    @Test
    void aFailureWithoutADetailIsNamedWithoutOne() {
        assertEquals(" (last failure: step charge, attempt 1)",
                SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.STEP_FAILED, "charge", 1, null))));
        assertEquals(" (last failure: compensation of reserve, attempt 2)",
                SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.COMPENSATION_FAILED, "reserve", 2, null))));
        assertEquals(" (last failure: step hold, attempt 1: timed out)",
                SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.STEP_TIMED_OUT, "hold", 1, null))));
    }

    @Test
    void aTimeOutIsNamedByItsDetailSoOneSettledWhileTheSagaCompensatesIsNotCalledAnExpiredTimeout() {
        assertEquals(" (last failure: step hold, attempt 1: saga is compensating)", SagaCrashExplorer.lastFailure(
                List.of(transition(TransitionType.STEP_TIMED_OUT, "hold", 1, "saga is compensating"))));
        assertEquals(" (last failure: step hold, attempt 2: SagaTimeoutException: step 'hold' of saga test-saga-1 timed "
                + "out after PT5S)", SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.STEP_TIMED_OUT, "hold",
                2, "SagaTimeoutException: step 'hold' of saga test-saga-1 timed out after PT5S"))));
    }

    @Test
    void aHugeDetailIsCutWithItsLengthNeverInHalfACharacter() {
        String huge = "IllegalStateException: " + "x".repeat(1_000_000);
        String text = SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.COMPENSATION_FAILED, "reserve", 3, huge)));
        assertEquals(" (last failure: compensation of reserve, attempt 3: " + huge.substring(0, SagaCrashExplorer.FAILURE_DETAIL)
                + "... (" + huge.length() + " characters))", text);

        // a pair (an emoji) across the cut is left out whole
        String pair = "x".repeat(SagaCrashExplorer.FAILURE_DETAIL - 1) + "\uD83D\uDE00" + "tail";
        String cut = SagaCrashExplorer.lastFailure(List.of(transition(TransitionType.STEP_FAILED, "charge", 1, pair)));
        assertTrue(cut.contains(": " + "x".repeat(SagaCrashExplorer.FAILURE_DETAIL - 1) + "... (" + pair.length() + " characters))"), cut);
    }

    @Test
    void theLastFailureIsTheLatestOfStepAndCompensationFailuresRetriesAndSuccessesAside() {
        assertEquals(" (last failure: compensation of reserve, attempt 1: IllegalStateException: gone)",
                SagaCrashExplorer.lastFailure(List.of(
                        transition(TransitionType.STEP_FAILED, "charge", 1, "InjectedFailure: injected"),
                        transition(TransitionType.COMPENSATION_FAILED, "reserve", 1, "IllegalStateException: gone"),
                        transition(TransitionType.SAGA_NEEDS_ATTENTION, null, 0, null))));
        assertEquals("", SagaCrashExplorer.lastFailure(List.of(
                transition(TransitionType.STEP_RETRY_SCHEDULED, "notify", 1, "InjectedFailure: injected"),
                transition(TransitionType.STEP_SUCCEEDED, "notify", 2, null))));
    }
}
