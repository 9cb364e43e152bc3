package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The explorer fails a retriable step once and expects what the step's own retry policy makes of that failure: a
 * policy that retries only some errors ({@code nonRetryable(RuntimeException.class)}: checked exceptions only) does not
 * retry the injected one, so the saga needs attention, as a policy of one attempt makes it; expecting it to complete
 * reported a false violation for a correct saga.
 */
class RetriableStepPolicyInExplorationTest {

    @Test
    void aRetriableStepWhosePolicyDoesNotRetryTheInjectedFailureIsExpectedToNeedAttention() {
        ExplorationReport report = SagaCrashExplorer.forSaga(SagaDefinition.builder("checked-retries", String.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("notify").action((d, ctx) -> d)
                .retry(RetryPolicy.builder().maxAttempts(5).nonRetryable(RuntimeException.class).build())
                .build(), "order-1").explore();

        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, report.scenarios().stream()
                .filter(s -> s.name().equals("step notify fails")).findFirst().orElseThrow().finalStatus());
    }

    @Test
    void aRetriableStepWhosePolicyRetriesTheInjectedFailureIsExpectedToComplete() {
        ExplorationReport report = SagaCrashExplorer.forSaga(SagaDefinition.builder("some-retries", String.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("notify").action((d, ctx) -> d)
                .retry(RetryPolicy.builder().maxAttempts(5).nonRetryable(IllegalArgumentException.class).build())
                .build(), "order-2").explore();

        assertEquals(SagaStatus.COMPLETED, report.scenarios().stream()
                .filter(s -> s.name().equals("step notify fails")).findFirst().orElseThrow().finalStatus());
    }
}
