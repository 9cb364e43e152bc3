package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
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
        assertEquals(1, report.scenarios(ExplorationReport.Kind.HAPPY_PATH).size());
        assertEquals(4, report.scenarios(ExplorationReport.Kind.STEP_FAILURE).size());
        assertEquals(3, report.scenarios(ExplorationReport.Kind.COMPENSATION_FAILURE).size());
        assertEquals(report.crashScenarios(), report.scenarios(ExplorationReport.Kind.CRASH_AFTER_WRITE).size()
                + report.scenarios(ExplorationReport.Kind.CRASH_BEFORE_WRITE).size());
    }
}
