package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A scenario that ends in the wrong state is reported with what stopped it: the step or compensation whose last
 * failure the store recorded, and that failure, so a test's failure says which code to look at, not only the states.
 */
class ExplorationFailureMessageTest {

    /** A saga whose compensation always throws: every scenario that compensates ends needing attention. */
    static SagaDefinition<String> stuck() {
        return SagaDefinition.builder("stuck", String.class)
                .step("reserve").action((d, ctx) -> d)
                .compensation((d, ctx) -> {
                    throw new IllegalStateException("the release service is gone");
                })
                .step("charge").action((d, ctx) -> d)
                .build();
    }

    @Test
    void aScenarioThatEndsInTheWrongStateNamesTheCompensationThatFailedForGoodAndItsError() {
        SagaCrashExplorer<Void, String> explorer = SagaCrashExplorer.forSaga(stuck(), "order-1");

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertListedUnder("expected COMPENSATED but ended FAILED_NEEDS_ATTENTION (last failure: compensation of reserve, "
                + "attempt 3: IllegalStateException: the release service is gone)", "step charge fails", error.getMessage());
    }

    /**
     * One root cause, the compensation that always throws, breaks some thirty scenarios with the same text: the message
     * writes each text once, with how often and in which scenarios, instead of thirty times.
     */
    @Test
    void aViolationManyScenariosShareIsWrittenOnceWithItsCountAndTheirNames() {
        SagaCrashExplorer<Void, String> explorer = SagaCrashExplorer.forSaga(stuck(), "order-1");

        String message = assertThrows(AssertionError.class, explorer::explore).getMessage();

        String text = "expected COMPENSATED but ended FAILED_NEEDS_ATTENTION (last failure: compensation of reserve, attempt 3: "
                + "IllegalStateException: the release service is gone)";
        assertEquals(1, message.split(Pattern.quote(text), -1).length - 1, message);
        Matcher grouped = Pattern.compile(Pattern.quote(text) + "\n {6}(\\d+) times, in: ([^\n]*)").matcher(message);
        assertTrue(grouped.find(), message);
        int times = Integer.parseInt(grouped.group(1));
        assertTrue(times >= 20, message);
        assertEquals(times, grouped.group(2).split("; ").length, message);
        assertTrue(grouped.group(2).startsWith("step charge fails; crash after write 1 while charge fails; "), message);
        Matcher header = Pattern.compile("found (\\d+) violation\\(s\\) in \\d+ scenarios, (\\d+) distinct:").matcher(message);
        assertTrue(header.find(), message);
        assertEquals(message.split("\n  - ", -1).length - 1, Integer.parseInt(header.group(2)), message);
    }

    /** An application's error message of 100,000 characters is cut in the violations it ends, not repeated whole in each. */
    @Test
    void aHugeErrorMessageIsCutWithItsLengthInTheViolation() {
        String huge = "the release service is gone: " + "x".repeat(100_000);
        SagaCrashExplorer<Void, String> explorer = SagaCrashExplorer.forSaga(SagaDefinition.builder("verbose", String.class)
                .step("reserve").action((d, ctx) -> d)
                .compensation((d, ctx) -> {
                    throw new IllegalStateException(huge);
                })
                .step("charge").action((d, ctx) -> d)
                .build(), "order-3");

        String message = assertThrows(AssertionError.class, explorer::explore).getMessage();

        assertTrue(message.length() < 20_000, "a message of " + message.length() + " characters");
        assertTrue(message.contains("(last failure: compensation of reserve, attempt 3: IllegalStateException: the release "
                + "service is gone: xxx"), message.substring(0, 2_000));
        assertTrue(message.contains("... (" + ("IllegalStateException: " + huge).length() + " characters))"),
                message.substring(0, 2_000));
    }

    /** {@code scenario} is listed under the violation {@code text}: alone as {@code scenario: text}, or among others. */
    static void assertListedUnder(String text, String scenario, String message) {
        assertTrue(message.contains(scenario + ": " + text) || Pattern.compile(Pattern.quote(text)
                + "\n {6}\\d+ times, in: (.*; )?" + Pattern.quote(scenario) + "(;|\n|$)").matcher(message).find(), message);
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

        assertListedUnder("expected COMPLETED but ended FAILED_NEEDS_ATTENTION (last failure: step notify, attempt 2: "
                + "IllegalStateException: mail server down)", "step notify fails", error.getMessage());
    }
}
