package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The crash explorer's check of a run that lost a remote compensation's command
 * ({@link ExplorationReport.Kind#LOST_COMPENSATION_COMMAND}): the attempt must fail by its timeout, with the error
 * recorded, then be retried or the saga need attention, never succeed. The real engine does so, so the check is fed
 * fabricated histories here.
 */
class LostCompensationCommandCheckTest {
    record Data() {
    }

    record Release() {
    }

    private static final String TIMED_OUT = "SagaTimeoutException: step 'hold' of saga test-saga-1 timed out after PT30S";

    private static SagaDefinition<Data> saga(RetryPolicy compensationRetry, Duration timeout) {
        SagaDefinition.StepBuilder<Data> hold = SagaDefinition.builder("trip", Data.class)
                .step("hold").command("hold-commands", (d, c) -> new Release())
                .onReply(Release.class, (d, r) -> d)
                .compensationCommand("release-commands", (d, c) -> new Release())
                .onCompensationReply(Release.class, (d, r) -> { })
                .compensationRetry(compensationRetry);
        if (timeout != null) {
            hold.timeout(timeout);
        }
        return hold.step("pay").action((d, c) -> d).build();
    }

    private static final SagaDefinition<Data> RETRIED = saga(RetryPolicy.builder().maxAttempts(2).build(),
            Duration.ofSeconds(30));
    private static final SagaDefinition<Data> GIVES_UP = saga(RetryPolicy.builder().maxAttempts(1).build(),
            Duration.ofSeconds(30));

    /** The compensation command of attempt 1 of step hold, as the kit loses it. */
    private static final List<Message> LOST = List.of(Message.builder(RecordingInterceptor.LOST_COMMANDS)
            .type("release").payload(new Release())
            .header(MessageHeaders.SAGA_ID, SagaRunReport.SAGA_ID).header(SagaMessages.STEP, "hold")
            .header(SagaMessages.PHASE, SagaMessages.COMPENSATION).header(SagaMessages.ATTEMPT, "1").build());

    /** A history of the given transitions of step hold (type, attempt, detail), a saga-level one when attempt is 0. */
    private static List<SagaTransition> history(Object... typeAttemptDetail) {
        List<SagaTransition> history = new ArrayList<>();
        Instant at = Instant.parse("2026-01-01T00:00:00Z");
        for (int i = 0; i < typeAttemptDetail.length; i += 3) {
            int attempt = (Integer) typeAttemptDetail[i + 1];
            history.add(new SagaTransition(SagaRunReport.SAGA_ID, history.size() + 1, at,
                    (TransitionType) typeAttemptDetail[i], attempt == 0 ? null : "hold", attempt,
                    (String) typeAttemptDetail[i + 2]));
        }
        return history;
    }

    private static List<String> violations(SagaDefinition<Data> saga, List<SagaTransition> history) {
        return SagaCrashExplorer.lostCompensationCommandViolations(saga, history, LOST);
    }

    private static final String OF = "the compensation of hold whose command of attempt 1 was lost ";

    @Test
    void aLostCompensationCommandTimedOutThenRetriedOrNeedingAttentionPerItsPolicyIsNoViolation() {
        assertEquals(List.of(), violations(RETRIED, history(
                TransitionType.COMPENSATION_STARTED, 1, null,
                TransitionType.COMPENSATION_RETRY_SCHEDULED, 1, TIMED_OUT,
                TransitionType.COMPENSATION_STARTED, 2, null,
                TransitionType.COMPENSATION_SUCCEEDED, 2, null)));
        assertEquals(List.of(), violations(GIVES_UP, history(
                TransitionType.COMPENSATION_STARTED, 1, null,
                TransitionType.COMPENSATION_FAILED, 1, TIMED_OUT,
                TransitionType.SAGA_NEEDS_ATTENTION, 0, null,
                TransitionType.SAGA_RETRIED, 0, TIMED_OUT,
                TransitionType.COMPENSATION_SUCCEEDED, 2, null)));
    }

    @Test
    void aLostCompensationCommandsAttemptThatSucceededOrWasNotRetriedOrGaveUpWithoutAttentionIsAViolation() {
        assertEquals(List.of(OF + "was recorded as succeeded by that attempt, which its participant never got in time"),
                violations(RETRIED, history(TransitionType.COMPENSATION_SUCCEEDED, 1, null)));
        assertEquals(List.of(OF + "timed out and its policy retries a timeout, but it was not retried (COMPENSATION_FAILED)"),
                violations(RETRIED, history(TransitionType.COMPENSATION_FAILED, 1, TIMED_OUT,
                        TransitionType.SAGA_NEEDS_ATTENTION, 0, null)));
        assertEquals(List.of(OF + "timed out and its policy gives up, but the saga never needed attention"
                        + " (COMPENSATION_FAILED)"),
                violations(GIVES_UP, history(TransitionType.COMPENSATION_FAILED, 1, TIMED_OUT,
                        TransitionType.COMPENSATION_SUCCEEDED, 2, null)));
        assertEquals(List.of(OF + "failed with no error recorded (COMPENSATION_FAILED)"),
                violations(GIVES_UP, history(TransitionType.COMPENSATION_FAILED, 1, null,
                        TransitionType.SAGA_NEEDS_ATTENTION, 0, null)));
    }

    @Test
    void aLostCompensationCommandsAttemptThatNeverEndedIsAViolationNamingAMissingTimeout() {
        assertEquals(List.of(OF + "never timed out"), violations(RETRIED, history(
                TransitionType.COMPENSATION_STARTED, 1, null)));
        assertEquals(List.of(OF + "has no timeout (no compensationTimeout, no timeout): the saga waits for its reply"
                        + " for ever, COMPENSATING, and never needs attention, so give the step a compensationTimeout"),
                violations(saga(RetryPolicy.DEFAULT, null), history(TransitionType.COMPENSATION_STARTED, 1, null)));
    }
}
