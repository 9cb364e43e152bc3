package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaStatus;

import java.util.List;
import java.util.Objects;

/**
 * What a crash exploration ran and found. Immutable.
 *
 * @param sagaName  the explored saga
 * @param scenarios every scenario with its final status and violations
 */
public record ExplorationReport(String sagaName, List<Scenario> scenarios) {

    public ExplorationReport {
        scenarios = List.copyOf(scenarios);
    }

    /** Every violation of every scenario. */
    public List<String> violations() {
        return scenarios.stream().flatMap(s -> s.violations().stream()).toList();
    }

    /** How many scenarios included a simulated crash followed by recovery. */
    public long crashScenarios() {
        return scenarios.stream().filter(Scenario::crashedAndRecovered).count();
    }

    /** The scenarios of one kind, in the order they ran; a null kind is refused (it would match none). */
    public List<Scenario> scenarios(Kind kind) {
        Objects.requireNonNull(kind, "kind");
        return scenarios.stream().filter(s -> s.kind() == kind).toList();
    }

    /**
     * What a scenario injects (see {@link SagaCrashExplorer}). A scenario with a crash is of a crash kind whatever
     * path it crashes on (the happy or the compensating path, a step's or a compensation's failure, a cancellation):
     * its name says which.
     */
    public enum Kind {
        /** No failure, no crash. */
        HAPPY_PATH,
        /** A step fails (always; once if retriable). */
        STEP_FAILURE,
        /** A compensation fails once while a step fails. */
        COMPENSATION_FAILURE,
        /** The saga is cancelled (once started, or after a step's success), no crash. */
        CANCELLATION,
        /** A crash right after a persisted transition, then recovery. */
        CRASH_AFTER_WRITE,
        /** A crash right before a transition is persisted (the action ran, its outcome lost), then recovery. */
        CRASH_BEFORE_WRITE
    }

    /**
     * One explored run.
     *
     * @param name                what was injected
     * @param kind                what kind of scenario it is
     * @param finalStatus         the saga's final status
     * @param crashedAndRecovered whether a crash was simulated and recovered from
     * @param violations          the invariants it broke
     */
    public record Scenario(String name, Kind kind, SagaStatus finalStatus, boolean crashedAndRecovered,
                           List<String> violations) {
        public Scenario {
            violations = List.copyOf(violations);
        }
    }
}
