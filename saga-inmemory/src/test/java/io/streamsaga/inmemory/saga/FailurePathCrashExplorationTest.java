package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The explorer promises a crash right after each persisted transition, recovered on a fresh orchestrator: also after
 * the transitions only a failure path writes (a step's retry scheduled, a compensation's failure and its retry
 * scheduled, the saga needing attention and the operator's retry the explorer makes then), not only along the happy
 * and the compensating path; and a crash point reached by the same writes in two scenarios is explored once.
 */
class FailurePathCrashExplorationTest {

    /** A crash after a write of a failure path: the write's transitions (a batch's joined by "; "), the failure. */
    private static final Pattern CRASH_AFTER = Pattern.compile("crash after write \\d+ \\((.*)\\) while (.*)");

    /**
     * reserve: compensation retried once; check: the action retried once; hold: a compensation that gives up at once
     * (the operator's retry); charge: the step the compensating path fails at.
     */
    static SagaDefinition<String> definition() {
        RetryPolicy twice = RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).build();
        return SagaDefinition.builder("failure-paths", String.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { }).compensationRetry(twice)
                .step("check").action((d, ctx) -> d).retry(twice).compensation((d, ctx) -> { })
                .step("hold").action((d, ctx) -> d).compensation((d, ctx) -> { }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> d)
                .build();
    }

    @Test
    void aCrashIsExploredRightAfterEachTransitionOnlyAFailurePathWrites() {
        ExplorationReport report = SagaCrashExplorer.forSaga(definition(), "order-1").explore();

        Set<String> crashedAfter = new TreeSet<>();
        for (ExplorationReport.Scenario scenario : report.scenarios()) {
            Matcher m = CRASH_AFTER.matcher(scenario.name());
            if (m.matches()) {
                assertTrue(scenario.crashedAndRecovered(), scenario.name());
                for (String transition : m.group(1).split("; ")) { // "TYPE step, attempt n" or "TYPE"
                    crashedAfter.add(transition.replaceFirst(", attempt \\d+$", "") + " while " + m.group(2));
                }
            }
        }
        for (String expected : List.of(
                "STEP_FAILED check while step check fails",
                "STEP_RETRY_SCHEDULED check while step check fails",
                "COMPENSATION_RETRY_SCHEDULED reserve while compensation of reserve fails once (charge fails)",
                "COMPENSATION_FAILED hold while compensation of hold fails once (charge fails)",
                "SAGA_NEEDS_ATTENTION while compensation of hold fails once (charge fails)",
                "SAGA_RETRIED while compensation of hold fails once (charge fails)")) {
            assertTrue(crashedAfter.contains(expected), expected + " not in " + crashedAfter);
        }
    }

    @Test
    void aCrashPointReachedByTheSameWritesIsExploredOnceWithItsKind() {
        ExplorationReport report = SagaCrashExplorer.forSaga(definition(), "order-1").explore();

        // "step reserve fails" writes a prefix of the happy path, then its own compensating path: the crash after the
        // saga's start (write 1) is the happy path's, explored there only.
        List<String> names = report.scenarios(ExplorationReport.Kind.CRASH_AFTER_WRITE).stream()
                .map(ExplorationReport.Scenario::name).toList();
        assertTrue(names.contains("crash after write 1 of the happy path"), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.startsWith("crash after write 1 (")), names.toString());
        assertEquals(names.size(), Set.copyOf(names).size(), names.toString());
        // "step charge fails" is the compensating path (charge, the last non-retriable step, failing), whose every
        // crash point is explored already: none of its own.
        assertTrue(names.contains("crash after write 5 while charge fails"), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.endsWith(" while step charge fails")), names.toString());
        assertEquals(1, report.scenarios(ExplorationReport.Kind.HAPPY_PATH).size());
        assertEquals(4, report.scenarios(ExplorationReport.Kind.STEP_FAILURE).size());
        assertEquals(3, report.scenarios(ExplorationReport.Kind.COMPENSATION_FAILURE).size());
        assertEquals(report.crashScenarios(), report.scenarios(ExplorationReport.Kind.CRASH_AFTER_WRITE).size()
                + report.scenarios(ExplorationReport.Kind.CRASH_BEFORE_WRITE).size());
    }

    /** A scenario's fixture: its environment and its number, whose parity sets when quote's price arrives. */
    record Quotes(SagaTestEnvironment env, int run) {
    }

    /**
     * check's retry (1 s after its failure) races quote's price (0.5 s or 1.5 s, by the scenario's parity): a run
     * whose timers fall otherwise than in another run of the same failure, as a retry policy's jitter makes them.
     */
    static SagaDefinition<String> racing(Quotes quotes) {
        RetryPolicy afterOneSecond = RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1))
                .jitter(0).build();
        Duration priced = Duration.ofMillis(quotes.run() % 2 == 0 ? 500 : 1500);
        return SagaDefinition.builder("racing-timers", String.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .parallel(group -> {
                    group.step("check").action((d, ctx) -> d).retry(afterOneSecond).compensation((d, ctx) -> { });
                    group.step("quote").asyncAction((d, ctx) -> {
                        CompletableFuture<String> price = new CompletableFuture<>();
                        quotes.env().scheduler().schedule(priced, () -> price.complete(d));
                        return price;
                    }).compensation((d, ctx) -> { });
                    group.merge((current, result) -> current);
                })
                .step("charge").action((d, ctx) -> d)
                .build();
    }

    @Test
    void aCrashRunThatDoesNotRepeatTheRecordedWritesIsReportedNotNamedForAWriteItDidNotCrashAfter() {
        AtomicInteger runs = new AtomicInteger();
        SagaCrashExplorer<Quotes, String> explorer = SagaCrashExplorer.forSaga(
                env -> new Quotes(env, runs.incrementAndGet()), FailurePathCrashExplorationTest::racing, "order-1");

        ExplorationReport report = explorer.explore(); // no violation: the crash and its recovery are checked all the same

        // Write 5 of the run the crash points were taken from: check's retry, its price coming later; in the crash
        // run (the other parity) the price came first, and the name says so.
        List<String> names = report.scenarios().stream().map(ExplorationReport.Scenario::name).toList();
        assertTrue(names.contains("crash after write 5 (STEP_STARTED check, attempt 2) while step check fails (crashed"
                + " elsewhere: this run's write 5 was (STEP_SUCCEEDED quote, attempt 1), not (STEP_STARTED check, attempt"
                + " 2), its runs not deterministic)"), names.toString());
    }
}
