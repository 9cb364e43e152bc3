package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A scenario that ends in the wrong state is reported with what stopped it: the step or compensation whose last
 * failure the store recorded, and that failure, so a test's failure says which code to look at, not only the states.
 */
class ExplorationFailureMessageTest {

    @Test
    void aScenarioThatEndsInTheWrongStateNamesTheCompensationThatFailedForGoodAndItsError() {
        List<String> effects = new ArrayList<>();
        SagaCrashExplorer<Void, String> explorer = SagaCrashExplorer.forSaga(SagaDefinition.builder("stuck", String.class)
                .step("reserve").action((d, ctx) -> {
                    effects.add(ctx.idempotencyKey());
                    return d;
                })
                .compensation((d, ctx) -> {
                    throw new IllegalStateException("the release service is gone");
                })
                .step("charge").action((d, ctx) -> d)
                .build(), "order-1");

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertTrue(error.getMessage().contains("step charge fails: expected COMPENSATED but ended FAILED_NEEDS_ATTENTION "
                + "(last failure: compensation of reserve, attempt 3: IllegalStateException: the release service is gone)"),
                error.getMessage());
    }

    @Test
    void aRetriableStepThatGivesUpIsReportedWithItsErrorWhereItWasExpectedToComplete() {
        SagaCrashExplorer<Void, String> explorer = SagaCrashExplorer.forSaga(SagaDefinition.builder("stubborn", String.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("notify").action((d, ctx) -> {
                    if (ctx.attempt() > 1) {
                        throw new IllegalStateException("mail server down");
                    }
                    return d;
                })
                .retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .build(), "order-2");

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertTrue(error.getMessage().contains("step notify fails: expected COMPLETED but ended"), error.getMessage());
        assertTrue(error.getMessage().contains("(last failure: step notify, attempt 2: IllegalStateException: mail server down)"),
                error.getMessage());
    }
}
