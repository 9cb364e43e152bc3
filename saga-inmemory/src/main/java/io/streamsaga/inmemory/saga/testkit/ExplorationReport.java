package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaStatus;

import java.util.List;
import java.util.Objects;

/**
 * What a crash exploration ran and found. Immutable.
 *
 * @param sagaName  the explored saga
 * @param scenarios every scenario with its final status and violations
 * @param skipped   the failure points not explored, each with why (a remote step without a timeout, which waits for
 *                  its reply for ever by design, is not explored without one)
 * @param seed      the seed of the retry jitter the scenarios ran with ({@link SagaCrashExplorer#seed}): the same
 *                  seed runs them again
 */
public record ExplorationReport(String sagaName, List<Scenario> scenarios, List<String> skipped, long seed) {

    public ExplorationReport {
        scenarios = List.copyOf(scenarios);
        skipped = List.copyOf(skipped);
    }

    /** A report of nothing skipped, of the kit's default seed (0). */
    public ExplorationReport(String sagaName, List<Scenario> scenarios) {
        this(sagaName, scenarios, List.of(), SagaTestKit.DEFAULT_SEED);
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
        CRASH_BEFORE_WRITE,
        /**
         * A remote step's participant never replies (it acted, its replies are lost), so the step's timeout fails its
         * attempts; or a remote compensation's participant does not reply once, while a step fails. No crash.
         */
        NO_REPLY,
        /**
         * A remote step's command never reaches its participant (lost on the way: the participant never acts), so the
         * step's timeout fails its attempts: a step that is not retriable is left uncertain and compensated, and its
         * compensation must be harmless with nothing to undo; a retriable step loses its first command only, and must
         * then complete or need attention. No crash.
         */
        LOST_COMMAND,
        /**
         * A remote compensation's command does not reach its participant once, while a step fails: the compensation's
         * timeout must fail that attempt, which its policy retries, or the saga needs attention with the timeout
         * recorded (then an operator retry); the lost attempt never counts as the compensation's success. The lost
         * command turns up late, once the next one was sent, so the participant gets the compensation twice under one
         * idempotency key and must undo once. A compensation without a timeout is explored too: the saga waiting for
         * ever is a violation. No crash.
         */
        LOST_COMPENSATION_COMMAND
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
