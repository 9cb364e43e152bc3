package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport.Kind;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepRole;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;

import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Crash exploration: runs a saga once for every failure point and checks the invariants every run must
 * keep. The scenarios:
 * <ul>
 *   <li>the happy path;</li>
 *   <li>each step failing (always; once for a retriable step, which must then complete, or need attention when its
 *       retry policy does not retry that {@link InjectedFailure}: one attempt, or its type declared non-retryable);</li>
 *   <li>each compensation failing once while the last non-retriable step fails (if the compensation's
 *       retry policy gives up, the saga needs attention and the explorer retries it as an operator would);</li>
 *   <li>each remote step whose participant never replies ({@link ExplorationReport.Kind#NO_REPLY}): it acts, and its
 *       replies are lost, so the step's timeout fails every attempt on the virtual clock (once only for a retriable
 *       step, which must then complete, or need attention when its policy does not retry a
 *       {@link io.streamsaga.saga.SagaTimeoutException}); the step is uncertain, so the saga must compensate it with
 *       the steps that took effect; and each remote compensation whose participant does not reply once while the
 *       last non-retriable step fails (its compensation timeout fails the attempt; an operator retry follows if the
 *       compensation's policy gives up). A step without a timeout waits for its reply for ever by design: it is not
 *       explored so, and {@link ExplorationReport#skipped()} says why (a compensation without one is reported by its
 *       lost command's scenario, below);</li>
 *   <li>each remote step whose command never reaches its participant ({@link ExplorationReport.Kind#LOST_COMMAND}):
 *       the participant never acts, and the step times out as above, so the saga compensates it as uncertain: its
 *       compensation must be harmless with nothing to undo (a retriable step loses its first command only, and must
 *       then complete or need attention as above);</li>
 *   <li>each remote compensation whose command does not reach its participant once while the last non-retriable
 *       step fails ({@link ExplorationReport.Kind#LOST_COMPENSATION_COMMAND}): the attempt must fail by the
 *       compensation's timeout, with the error recorded, and be retried when its policy retries a timeout, else the
 *       saga must need attention (an operator retry follows), never be compensated by that attempt; the lost command
 *       is delivered late, once the next command of that compensation is sent (as a broker's redelivery), so the
 *       participant gets the compensation twice under one idempotency key, and the application's invariant sees
 *       whether it undid twice. A compensation without a timeout is explored too: the saga then waits in
 *       {@code COMPENSATING} for ever, never needing attention, which is a violation;</li>
 *   <li>a crash right after each persisted transition of the happy path and of the compensating path,
 *       and a crash right before each (the action ran, its outcome was lost: recovery runs it again),
 *       each followed by recovery on a fresh orchestrator over the same store;</li>
 *   <li>a crash right after each persisted transition of each step failure, compensation failure, missing reply and
 *       lost command above (a lost compensation command with a timeout), recovered the same way with the same
 *       failures injected: so also after what only a failure path writes (a step's {@code STEP_RETRY_SCHEDULED}, a
 *       compensation's {@code COMPENSATION_RETRY_SCHEDULED} or {@code COMPENSATION_FAILED},
 *       {@code SAGA_NEEDS_ATTENTION}, the explorer's operator retry). A crash point whose
 *       writes up to it (their transitions, steps and attempts) an earlier scenario crashed after already is explored
 *       once: the store is the same there (a run that loses commands is compared only with runs that lose the same:
 *       its participants never acted). Named {@code crash after write n (the write's transitions) while ...};
 *       a crash point is taken from a run of the same failures without a crash, so a crash run that did not write
 *       the same up to it (the saga's runs are not deterministic: parallel members ending on the environment's
 *       executor in either order, timers ordered by a retry policy's jitter) says in its name where it crashed
 *       instead ({@code (crashed elsewhere: this run's write n was (...), not (...), ...)});</li>
 *   <li>when the saga can be cancelled once started ({@code whenStarted().cancel()} is accepted: it still waits
 *       for a reply, a timer or a stage before its pivot), that cancellation; and the saga cancelled right after
 *       each step's success is stored (by a {@link io.streamsaga.saga.SagaListener} on the thread that drives it;
 *       not after the last step, which the saga's completion follows in the same drive), wherever the cancel is
 *       accepted (before the pivot). Each cancellation must compensate, and is explored with a crash right after
 *       and right before each of its writes, recovered the same way (a crash before its first write loses the
 *       cancel with the process: the saga must then complete). A run whose cancel came at another write than in
 *       the run its crash points were numbered from (parallel members ending on the executor in either order) must
 *       end as what its cancel met: compensated when the cancel was stored before the crash, completed when not,
 *       its name saying so ({@code (this run's cancel came after write n, not m, and was stored, ...)}).</li>
 * </ul>
 * Invariants: the saga reaches the expected terminal state; nothing is left running (no active saga, no
 * undelivered message, no timer); each step succeeds and each compensation succeeds at most once in the
 * store's history; if the saga did not complete, every step that took effect was compensated, and every step
 * with a compensation whose stored status ends uncertain (timed out, its outcome lost) or otherwise still needing
 * its compensation ended compensated, with its
 * idempotency key, groups in reverse order (a step's compensation starts only after those of the later
 * groups succeeded, a remote one when its command is sent; a parallel group's members may overlap), and no
 * step that never took effect was compensated; in a run without a crash, a compensation attempt whose command was
 * lost failed by its timeout and was retried or needed attention, as above; then the application's own invariant
 * ({@link #invariant}) holds, which is where "took effect exactly once" is checked against the application's state.
 * {@link #explore()} throws an {@link AssertionError} listing every violation (a text several scenarios share once,
 * with its count and their names); each scenario of the
 * {@link ExplorationReport} has its {@link ExplorationReport.Kind}. Every run draws the retry policies' jitter from a
 * {@code java.util.Random} of one {@linkplain #seed seed} (0 by default), so the runs, and the timers a jitter orders,
 * repeat from one exploration to the next; a failing exploration names its seed. Each scenario's run is closed
 * once it is checked (what the kit created for it: orchestrator,
 * bus, transport, clock, executor), so an invariant must not keep its report to drive it later. Not thread-safe.
 *
 * @param <F> the fixture type (fresh per scenario)
 * @param <D> the saga data type
 */
public final class SagaCrashExplorer<F, D> {
    /** The most of a failure's detail a violation shows. */
    static final int FAILURE_DETAIL = 500;

    /**
     * The statuses a step must not end in when its saga ended compensated and it has a compensation: the engine's
     * {@link StepStatus#needsCompensation()} spelled out, not called, so that an engine that wrongly skips a status
     * there cannot blind this check too.
     */
    private static final Set<StepStatus> LEFT_TO_UNDO = EnumSet.of(StepStatus.SUCCEEDED, StepStatus.UNCERTAIN,
            StepStatus.COMPENSATING, StepStatus.COMPENSATION_RETRY_SCHEDULED, StepStatus.COMPENSATION_FAILED);

    private final SagaTestKit<F, D> kit;
    private BiConsumer<F, SagaRunReport<F, D>> invariant = (f, r) -> {
    };

    private SagaCrashExplorer(SagaTestKit<F, D> kit) {
        this.kit = kit;
    }

    /** Explores a saga over a fixture created per scenario (see {@link SagaTestKit#given(Function, Function, Object)}). */
    public static <F, D> SagaCrashExplorer<F, D> forSaga(Function<SagaTestEnvironment, F> fixture,
                                                         Function<F, SagaDefinition<D>> definition, D data) {
        return new SagaCrashExplorer<>(SagaTestKit.given(fixture, definition, data));
    }

    /** Explores a saga with no per-run state. */
    public static <D> SagaCrashExplorer<Void, D> forSaga(SagaDefinition<D> definition, D data) {
        return new SagaCrashExplorer<>(SagaTestKit.given(definition, data));
    }

    /** The bus's type registry (commands and replies of remote steps). */
    public SagaCrashExplorer<F, D> types(TypeRegistry types) {
        kit.types(types);
        return this;
    }

    /**
     * The kit's {@link SagaTestKit#maxRoundsAtOneInstant} for every scenario: a scenario whose run passes it fails
     * the exploration ({@link AssertionError}, the kit's as its cause). 100,000 by default. A scenario recovered
     * after a crash runs an action again at the same instant, so a burst it publishes may count twice.
     *
     * @throws io.streamsaga.ConfigurationException when {@code rounds} is below 1
     */
    public SagaCrashExplorer<F, D> maxRoundsAtOneInstant(int rounds) {
        kit.maxRoundsAtOneInstant(rounds);
        return this;
    }

    /**
     * The kit's {@link SagaTestKit#maxTimersToSettle} for every scenario (each is settled): a scenario whose run
     * passes it fails the exploration ({@link AssertionError}, the kit's as its cause). 100,000 by default.
     *
     * @throws io.streamsaga.ConfigurationException when {@code timers} is below 1
     */
    public SagaCrashExplorer<F, D> maxTimersToSettle(int timers) {
        kit.maxTimersToSettle(timers);
        return this;
    }

    /**
     * The seed of the retry jitter of every scenario's run ({@link SagaTestKit#seed}; 0 by default): an exploration
     * with the seed another one names (its {@link ExplorationReport#seed()}, or its failure's message) runs the same
     * scenarios the same way; another seed explores other jittered delays.
     */
    public SagaCrashExplorer<F, D> seed(long seed) {
        kit.seed(seed);
        return this;
    }

    /** The application's invariant, checked after every scenario (throw an AssertionError when it fails). */
    public SagaCrashExplorer<F, D> invariant(BiConsumer<F, SagaRunReport<F, D>> invariant) {
        this.invariant = Objects.requireNonNull(invariant, "invariant");
        return this;
    }

    /**
     * Runs every scenario; throws an {@link AssertionError} listing every violated invariant, a text that several
     * scenarios share once with its count and their names.
     */
    public ExplorationReport explore() {
        List<ExplorationReport.Scenario> scenarios = new ArrayList<>();
        SagaRunReport<F, D> happy = run("happy path", Kind.HAPPY_PATH, Map.of(), Map.of(), LostMessages.NONE, 0, false,
                null, SagaStatus.COMPLETED, scenarios);
        SagaDefinition<D> definition = happy.definition();
        int happyWrites = happy.writes();

        SagaStep<D> trigger = null;
        for (SagaStep<D> step : definition.steps()) {
            if (step.role() != StepRole.RETRIABLE) {
                trigger = step;
            }
        }
        int compensatingWrites = 0;
        List<String> compensatingWritten = List.of();
        List<Failure> failures = new ArrayList<>(); // the failure scenarios, each explored with crashes below
        for (SagaStep<D> step : definition.steps()) {
            boolean retriable = step.role() == StepRole.RETRIABLE;
            // A retriable step fails once: it completes if its own policy retries that failure (attempts left, and
            // not a type it declares non-retryable), else it needs attention.
            SagaStatus expected = retriable
                    ? (step.retryPolicy().shouldRetry(new InjectedFailure("injected failure 1 of step " + step.name()), 1)
                            ? SagaStatus.COMPLETED : SagaStatus.FAILED_NEEDS_ATTENTION)
                    : SagaStatus.COMPENSATED;
            String name = "step " + step.name() + " fails";
            Map<String, FailureMode> fails = Map.of(step.name(), retriable ? FailureMode.once() : FailureMode.always());
            SagaRunReport<F, D> report = run(name, Kind.STEP_FAILURE, fails, Map.of(), LostMessages.NONE, 0, false,
                    null, expected, scenarios);
            failures.add(new Failure(name, fails, Map.of(), LostMessages.NONE, expected, report.written()));
            if (step == trigger) {
                compensatingWrites = report.writes();
                compensatingWritten = report.written();
            }
        }
        if (trigger != null) {
            for (SagaStep<D> step : definition.steps()) {
                if (step.hasCompensation() && undoneWhenFails(step, trigger)) {
                    String name = "compensation of " + step.name() + " fails once (" + trigger.name() + " fails)";
                    Map<String, FailureMode> fails = Map.of(trigger.name(), FailureMode.always());
                    Map<String, FailureMode> compensationFails = Map.of(step.name(), FailureMode.once());
                    SagaRunReport<F, D> report = run(name, Kind.COMPENSATION_FAILURE, fails, compensationFails,
                            LostMessages.NONE, 0, false, null, SagaStatus.COMPENSATED, scenarios);
                    failures.add(new Failure(name, fails, compensationFails, LostMessages.NONE, SagaStatus.COMPENSATED,
                            report.written()));
                }
            }
        }
        List<String> skipped = new ArrayList<>();
        exploreNoReply(definition, trigger, failures, skipped, scenarios);
        // The run prefixes (the writes up to and including the crash point) already crashed after: a crash there
        // leaves the same store whatever failure the run goes on to inject, so each is explored once.
        Set<List<String>> crashedAfter = new HashSet<>();
        List<String> happyWritten = happy.written();
        for (boolean before : new boolean[] {false, true}) {
            String when = before ? "crash before write " : "crash after write ";
            Kind kind = before ? Kind.CRASH_BEFORE_WRITE : Kind.CRASH_AFTER_WRITE;
            for (int write = before ? 2 : 1; write <= happyWrites; write++) { // before write 1 the saga never started
                run(when + write + " of the happy path", kind, Map.of(), Map.of(), LostMessages.NONE, write, before,
                        happyWritten.subList(0, write), SagaStatus.COMPLETED, scenarios);
                if (!before) {
                    crashedAfter.add(happyWritten.subList(0, write));
                }
            }
            if (trigger != null) {
                for (int write = before ? 2 : 1; write <= compensatingWrites; write++) {
                    run(when + write + " while " + trigger.name() + " fails", kind, Map.of(trigger.name(),
                            FailureMode.always()), Map.of(), LostMessages.NONE, write, before,
                            compensatingWritten.subList(0, write),
                            SagaStatus.COMPENSATED, scenarios);
                    if (!before) {
                        crashedAfter.add(compensatingWritten.subList(0, write));
                    }
                }
            }
        }
        // A crash right after each transition only a failure path writes (a step's retry scheduled, another step's
        // compensating path, a compensation's failure and retry, the operator's retry after it gave up).
        for (Failure failure : failures) {
            List<String> written = failure.written();
            // A run that loses commands leaves their participants otherwise than one that does not (they never acted,
            // and recovery's re-sent command is lost too), though its store is the same: its crash points are its own.
            List<String> lostCommands = failure.lost().commands().isEmpty()
                    && failure.lost().compensationCommands().isEmpty() ? List.of()
                    : List.of("commands lost " + failure.lost().commands() + ", compensation commands lost "
                            + failure.lost().compensationCommands());
            for (int write = 1; write <= written.size(); write++) {
                List<String> point = new ArrayList<>(lostCommands);
                point.addAll(written.subList(0, write));
                if (crashedAfter.add(point)) {
                    run("crash after write " + write + " (" + written.get(write - 1) + ") while " + failure.name(),
                            Kind.CRASH_AFTER_WRITE, failure.steps(), failure.compensations(), failure.lost(), write,
                            false, written.subList(0, write), failure.expected(), scenarios);
                }
            }
        }
        exploreCancellation(definition, scenarios);
        ExplorationReport report = new ExplorationReport(definition.name(), scenarios, skipped, kit.seed());
        if (!report.violations().isEmpty()) {
            throw new AssertionError(failureMessage(report));
        }
        return report;
    }

    /**
     * Every violation, a text that several scenarios share written once with how often and where: one root cause (a
     * compensation that always throws) breaks dozens of scenarios with the same text, which written out each time
     * buries the others. A text of one scenario keeps the form {@code scenario: text}.
     */
    static String failureMessage(ExplorationReport report) {
        Map<String, List<String>> scenariosByText = new LinkedHashMap<>();
        Map<String, String> alone = new HashMap<>(); // the violation as written, for a text seen once
        for (ExplorationReport.Scenario scenario : report.scenarios()) {
            String prefix = scenario.name() + ": ";
            for (String violation : scenario.violations()) {
                String text = violation.startsWith(prefix) ? violation.substring(prefix.length()) : violation;
                scenariosByText.computeIfAbsent(text, t -> new ArrayList<>()).add(scenario.name());
                alone.put(text, violation);
            }
        }
        int total = report.violations().size();
        StringBuilder message = new StringBuilder("crash exploration of saga '").append(report.sagaName())
                .append("' with retry jitter seed ").append(report.seed()).append(" (.seed(").append(report.seed())
                .append(") runs its scenarios again) found ").append(total).append(" violation(s) in ")
                .append(report.scenarios().size())
                .append(" scenarios");
        if (scenariosByText.size() < total) {
            message.append(", ").append(scenariosByText.size()).append(" distinct");
        }
        message.append(':');
        scenariosByText.forEach((text, names) -> {
            message.append("\n  - ");
            if (names.size() == 1) {
                message.append(alone.get(text));
            } else {
                message.append(text).append("\n      ").append(names.size()).append(" times, in: ")
                        .append(String.join("; ", new LinkedHashSet<>(names)));
            }
        });
        return message.toString();
    }

    /**
     * When the saga can be cancelled once started (as {@code whenStarted().cancel()} does: it still waits for a
     * reply, a timer or a stage, before its pivot), the cancellation; and the saga cancelled right after each step's
     * success is stored (from a listener, on the thread that drives the saga), wherever that cancel is accepted
     * (not past the pivot, not finished). Each such cancellation, then a crash right after and right before each of
     * its writes, each followed by recovery. A crash before its first write loses the cancel (the call died with the
     * process, nothing of it was stored): the saga goes on and completes.
     */
    private void exploreCancellation(SagaDefinition<D> definition, List<ExplorationReport.Scenario> scenarios) {
        exploreCancellation("cancelled after it started", (crashAt, before) -> {
            SagaRunReport<F, D> report = kit.runCancelled(crashAt, before);
            return report == null ? null : new Cancelled<>(report, report.writesBeforeCancel());
        }, scenarios);
        List<SagaStep<D>> steps = definition.steps();
        // Not after the last step: the saga completes in the same drive, where no cancel from outside can come in.
        for (SagaStep<D> step : steps.subList(0, steps.size() - 1)) {
            exploreCancellation("cancelled after " + step.name() + " succeeded", (crashAt, before) -> {
                SagaRunReport<F, D> report = kit.runCancelledAfter(step.name(), crashAt, before);
                if (crashAt == 0 && !report.cancelAccepted()) { // the probe: a cancel refused there explores nothing
                    report.close();
                    return null;
                }
                return new Cancelled<>(report, report.writesBeforeCancel());
            }, scenarios);
        }
    }

    /**
     * A failure scenario: what it fails, the status it must end in, and what its run (no crash) wrote, write by write
     * (the crash points explored along it).
     */
    private record Failure(String name, Map<String, FailureMode> steps, Map<String, FailureMode> compensations,
                           LostMessages lost, SagaStatus expected, List<String> written) {
    }

    /**
     * A remote step whose participant never replies, for each remote step: it acts, its replies are lost, and the
     * step's timeout fails each attempt (a retriable step's first only, as a step failure fails it once); the step is
     * then uncertain and compensated with those that took effect. Then its command lost the same way: the participant
     * never acts, and the step's compensation, sent all the same, must find nothing to undo and do no harm. And a
     * remote compensation whose participant does not reply once, for each remote compensation the trigger's failure
     * runs. A step without a timeout waits for its reply for ever by design, as docs/sagas.md says: skipped, with
     * why; a compensation without one, by its lost command's scenario ({@link #exploreLostCompensationCommands}).
     */
    private void exploreNoReply(SagaDefinition<D> definition, SagaStep<D> trigger, List<Failure> failures,
                                List<String> skipped, List<ExplorationReport.Scenario> scenarios) {
        for (SagaStep<D> step : definition.steps()) {
            if (!step.isRemote()) {
                continue;
            }
            boolean retriable = step.role() == StepRole.RETRIABLE;
            String name = "no reply to " + step.name() + (retriable ? " once" : " ever");
            String lostName = "command to " + step.name() + (retriable ? " lost once" : " never delivered");
            if (step.timeout() == null) {
                String why = ": step " + step.name() + " has no timeout, so the saga waits for its reply for ever, by"
                        + " design";
                skipped.add(name + why);
                skipped.add(lostName + why);
                continue;
            }
            SagaStatus expected = retriable
                    ? (step.retryPolicy().shouldRetry(new SagaTimeoutException(SagaRunReport.SAGA_ID, step.name(),
                            step.timeout()), 1) ? SagaStatus.COMPLETED : SagaStatus.FAILED_NEEDS_ATTENTION)
                    : SagaStatus.COMPENSATED;
            FailureMode mode = retriable ? FailureMode.once() : FailureMode.always();
            LostMessages lost = new LostMessages(Map.of(), Map.of(step.name(), mode), Map.of(), Map.of());
            SagaRunReport<F, D> report = run(name, Kind.NO_REPLY, Map.of(), Map.of(), lost, 0, false, null, expected,
                    scenarios);
            failures.add(new Failure(name, Map.of(), Map.of(), lost, expected, report.written()));
            // Its command lost on the way: the participant never acts, yet the step is uncertain and compensated.
            LostMessages lostCommand = new LostMessages(Map.of(step.name(), mode), Map.of(), Map.of(), Map.of());
            report = run(lostName, Kind.LOST_COMMAND, Map.of(), Map.of(), lostCommand, 0, false, null, expected,
                    scenarios);
            failures.add(new Failure(lostName, Map.of(), Map.of(), lostCommand, expected, report.written()));
        }
        if (trigger == null) {
            return;
        }
        for (SagaStep<D> step : definition.steps()) {
            if (step.remoteCompensation().isEmpty() || !undoneWhenFails(step, trigger)) {
                continue;
            }
            String name = "no reply to the compensation of " + step.name() + " once (" + trigger.name() + " fails)";
            if (step.compensationTimeout() == null) {
                continue; // it would wait for ever: a violation its lost command's scenario reports, once
            }
            Map<String, FailureMode> fails = Map.of(trigger.name(), FailureMode.always());
            LostMessages lost = new LostMessages(Map.of(), Map.of(), Map.of(step.name(), FailureMode.once()), Map.of());
            SagaRunReport<F, D> report = run(name, Kind.NO_REPLY, fails, Map.of(), lost, 0, false, null,
                    SagaStatus.COMPENSATED, scenarios);
            failures.add(new Failure(name, fails, Map.of(), lost, SagaStatus.COMPENSATED, report.written()));
        }
        exploreLostCompensationCommands(definition, trigger, failures, scenarios);
    }

    /**
     * For each remote compensation the trigger's failure runs, its command lost once
     * ({@link Kind#LOST_COMPENSATION_COMMAND}), then delivered late, once the next command of that compensation was
     * sent: the compensation's timeout must fail
     * the attempt, retried per its policy (an operator retry follows if it gives up), and the participant gets the
     * compensation twice under one key. Explored without a timeout too, unlike a missing reply: the saga then waits in
     * {@code COMPENSATING} for ever and never needs attention, the failure hidden, which is reported (with no crash
     * points: each would hang the same way).
     */
    private void exploreLostCompensationCommands(SagaDefinition<D> definition, SagaStep<D> trigger,
                                                 List<Failure> failures, List<ExplorationReport.Scenario> scenarios) {
        for (SagaStep<D> step : definition.steps()) {
            if (step.remoteCompensation().isEmpty() || !undoneWhenFails(step, trigger)) {
                continue;
            }
            String name = "compensation command to " + step.name() + " lost once, then redelivered (" + trigger.name()
                    + " fails)";
            Map<String, FailureMode> fails = Map.of(trigger.name(), FailureMode.always());
            LostMessages lost = new LostMessages(Map.of(), Map.of(), Map.of(), Map.of(step.name(), FailureMode.once()));
            SagaRunReport<F, D> report = run(name, Kind.LOST_COMPENSATION_COMMAND, fails, Map.of(), lost, 0, false,
                    null, SagaStatus.COMPENSATED, scenarios);
            if (step.compensationTimeout() != null) {
                failures.add(new Failure(name, fails, Map.of(), lost, SagaStatus.COMPENSATED, report.written()));
            }
        }
    }

    /**
     * Whether {@code step} is undone when {@code trigger} fails: an earlier group's, a sibling of the trigger in a
     * parallel group, or the trigger itself when it is remote (its failed reply leaves it uncertain).
     */
    private static boolean undoneWhenFails(SagaStep<?> step, SagaStep<?> trigger) {
        return step.group() < trigger.group()
                || (step.group() == trigger.group() && (step != trigger || step.isRemote()));
    }

    /** A run with a cancel, and the writes made before it (the cancel's are numbered from there). */
    private record Cancelled<F, D>(SagaRunReport<F, D> report, int writesBeforeCancel) {
    }

    /** A cancellation scenario ({@code runner} gives null when the saga cannot be cancelled there). */
    private void exploreCancellation(String cancelled, BiFunction<Integer, Boolean, Cancelled<F, D>> runner,
                                     List<ExplorationReport.Scenario> scenarios) {
        int[] writesBeforeCancel = new int[1];
        SagaRunReport<F, D> probe = run(cancelled, Kind.CANCELLATION, () -> {
            Cancelled<F, D> run = runner.apply(0, false);
            if (run == null) {
                return null;
            }
            writesBeforeCancel[0] = run.writesBeforeCancel();
            return run.report();
        }, SagaStatus.COMPENSATED, scenarios);
        if (probe == null) {
            return;
        }
        int first = writesBeforeCancel[0] + 1;
        for (boolean before : new boolean[] {false, true}) {
            for (int write = first; write <= probe.writes(); write++) {
                boolean lost = before && write == first;
                String name = (before ? "crash before write " : "crash after write ") + write + " while " + cancelled
                        + (lost ? " (the cancel is lost)" : "");
                int crashAt = write;
                Kind kind = before ? Kind.CRASH_BEFORE_WRITE : Kind.CRASH_AFTER_WRITE;
                // The crash point is numbered from the probe, but a run is not always the same (parallel members
                // whose work ends on the executor's threads store their successes in either order): the cancel
                // may come at another write, or after the crash, so the status expected is what the cancel met.
                if (run(name, kind, false, report -> cancelMet(report, lost, writesBeforeCancel[0]), () -> {
                    Cancelled<F, D> run = runner.apply(crashAt, before);
                    return run == null ? null : run.report();
                }, report -> cancelStored(report) ? SagaStatus.COMPENSATED : SagaStatus.COMPLETED,
                        scenarios) == null) {
                    scenarios.add(new ExplorationReport.Scenario(name, kind, null, false,
                            List.of(name + ": the saga could not be cancelled, unlike in '" + cancelled + "'")));
                }
            }
        }
    }

    /**
     * Whether the run stored its cancel before it crashed (a run of no failure compensates only when cancelled): a
     * crash right before the cancel's first write loses it, one before the cancel was made leaves nothing to lose.
     */
    private static boolean cancelStored(SagaRunReport<?, ?> report) {
        return report.written().stream().anyMatch(w -> w.contains(TransitionType.SAGA_COMPENSATING.name()));
    }

    /**
     * Empty when the cancel met in the run what it met in the probe its crash point was numbered from
     * ({@code lost}: the crash comes right before the cancel's first write there); else where it came in this run.
     */
    private static Optional<String> cancelMet(SagaRunReport<?, ?> report, boolean lost, int probeWritesBeforeCancel) {
        if (cancelStored(report) != lost) {
            return Optional.empty();
        }
        int writesBefore = report.writesBeforeCancel(); // 0: the run crashed before it could cancel
        String came = writesBefore == 0 ? "this run crashed before its cancel, which "
                : writesBefore == probeWritesBeforeCancel ? "the cancel "
                : "this run's cancel came after write " + writesBefore + ", not " + probeWritesBeforeCancel + ", and ";
        return Optional.of(came + (lost ? "was stored" : "was not stored") + ", its runs not deterministic");
    }

    /**
     * {@code crashLandsOn}: for a crash point taken from an earlier run of the same failures, that run's writes up to
     * and including the one the crash is at (null when there is none to check).
     */
    private SagaRunReport<F, D> run(String name, Kind kind, Map<String, FailureMode> steps,
                                    Map<String, FailureMode> compensations, LostMessages lost, int crashAt,
                                    boolean crashBefore, List<String> crashLandsOn, SagaStatus expected,
                                    List<ExplorationReport.Scenario> out) {
        return run(name, kind, !compensations.isEmpty() || lost.losesCompensations(), crashLandsOn == null ? null
                        : report -> crashMissed(crashLandsOn, report.writtenUntilCrash()),
                () -> kit.run(steps, compensations, lost, crashAt, crashBefore), report -> expected, out);
    }

    private SagaRunReport<F, D> run(String name, Kind kind, Supplier<SagaRunReport<F, D>> scenario,
                                    SagaStatus expected, List<ExplorationReport.Scenario> out) {
        return run(name, kind, false, null, scenario, report -> expected, out);
    }

    /**
     * {@code operatorRetries}: whether the run fails a compensation (or loses its reply), so that the explorer retries
     * it as an operator would when its policy gives up; {@code note}: what to add to the scenario's name once it ran
     * (where it really crashed), or null; {@code expected}: the status the run must end in, from the run.
     */
    private SagaRunReport<F, D> run(String name, Kind kind, boolean operatorRetries,
                                    Function<SagaRunReport<F, D>, Optional<String>> note,
                                    Supplier<SagaRunReport<F, D>> scenario,
                                    Function<SagaRunReport<F, D>, SagaStatus> expectedOf,
                                    List<ExplorationReport.Scenario> out) {
        List<String> violations = new ArrayList<>();
        SagaRunReport<F, D> report;
        try {
            report = scenario.get();
            if (report == null) {
                return null;
            }
        } catch (RuntimeException | AssertionError e) {
            out.add(new ExplorationReport.Scenario(name, kind, null, false, List.of(name + ": the run failed: " + e)));
            throw new AssertionError("crash exploration scenario '" + name + "' could not run", e);
        }
        SagaStatus expected = expectedOf.apply(report);
        try {
            if (report.status() == SagaStatus.FAILED_NEEDS_ATTENTION && operatorRetries
                    && expected == SagaStatus.COMPENSATED) {
                report.retryCompensation(); // what an operator does after fixing the cause
            }
            check(report, expected, violations);
            invariant.accept(report.fixture(), report);
        } catch (RuntimeException | AssertionError e) {
            violations.add(e.getMessage() == null ? e.toString() : e.getMessage());
        } finally {
            report.close(); // checked: what the kit created for the scenario is closed (the report stays readable)
        }
        // Read once the run is over (after the operator's retry, whose writes a crash point may be among).
        String as = note == null ? name : name + note.apply(report).map(m -> " (" + m + ")").orElse("");
        List<String> named = violations.stream().map(v -> as + ": " + v).toList();
        out.add(new ExplorationReport.Scenario(as, kind, report.instance().map(i -> i.status()).orElse(null),
                report.crashedAndRecovered(), named));
        return report;
    }

    /**
     * Empty when a crash run wrote {@code recorded} up to its crash point, the writes of the run the crash point was
     * taken from (its name says which write it crashes at); else what it did, added to its name: the first write in
     * which they differ. A saga's runs may differ without any fault (parallel members whose work ends on the
     * environment's executor threads in either order; timers ordered by a retry policy's jitter; the application's
     * own timing), so that is no violation: the crash and the recovery after it are checked all the same, and the
     * name says where the crash really was.
     */
    static Optional<String> crashMissed(List<String> recorded, List<String> untilCrash) {
        if (untilCrash.equals(recorded)) {
            return Optional.empty();
        }
        int write = 0;
        while (write < recorded.size() && write < untilCrash.size() && recorded.get(write).equals(untilCrash.get(write))) {
            write++;
        }
        String taken = write < recorded.size() ? "(" + recorded.get(write) + ")" : "nothing";
        return Optional.of(write < untilCrash.size()
                ? "crashed elsewhere: this run's write " + (write + 1) + " was (" + untilCrash.get(write) + "), not "
                        + taken + ", its runs not deterministic"
                : "no crash: this run made " + untilCrash.size() + " write(s), its runs not deterministic");
    }

    private void check(SagaRunReport<F, D> report, SagaStatus expected, List<String> violations) {
        SagaStatus status = report.status();
        if (status != expected) {
            violations.add("expected " + expected + " but ended " + status + lastFailure(report.history()));
        }
        if (!report.environment().store().findByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING)).isEmpty()) {
            violations.add("a saga is still running or compensating");
        }
        long pending = report.environment().transport().pendingCount();
        if (pending != 0) {
            violations.add(pending + " message(s) left undelivered");
        }
        if (report.environment().scheduler().pendingTasks() != 0) {
            violations.add(report.environment().scheduler().pendingTasks() + " timer(s) left pending");
        }
        Map<String, Integer> stepSucceeded = new HashMap<>();
        Map<String, Integer> compensationSucceeded = new HashMap<>();
        Map<String, Boolean> uncertain = new HashMap<>();
        for (SagaTransition t : report.history()) {
            if (t.type() == TransitionType.STEP_SUCCEEDED) {
                stepSucceeded.merge(t.step(), 1, Integer::sum);
            } else if (t.type() == TransitionType.COMPENSATION_SUCCEEDED) {
                compensationSucceeded.merge(t.step(), 1, Integer::sum);
            } else if (t.type() == TransitionType.STEP_TIMED_OUT || (t.type() == TransitionType.STEP_FAILED
                    && report.definition().step(t.step()).isRemote())) {
                uncertain.put(t.step(), true); // its effect is unknown, so it is compensated too
            }
        }
        stepSucceeded.forEach((step, n) -> {
            if (n > 1) {
                violations.add("step " + step + " recorded as succeeded " + n + " times");
            }
        });
        compensationSucceeded.forEach((step, n) -> {
            if (n > 1) {
                violations.add("compensation of " + step + " recorded as succeeded " + n + " times");
            }
        });
        List<RecordedInvocation> invocations = report.invocations();
        Map<String, Integer> firstCompensation = new LinkedHashMap<>();
        for (RecordedInvocation i : invocations) {
            if (!i.isForward()) {
                String expectedKey = SagaRunReport.SAGA_ID + "/" + i.step();
                if (!expectedKey.equals(i.idempotencyKey())) {
                    violations.add("compensation of " + i.step() + " got idempotency key " + i.idempotencyKey());
                }
                if (i.succeeded()) {
                    firstCompensation.putIfAbsent(i.step(), i.sequence());
                }
            }
        }
        List<String> tookEffect = report.stepsSucceeded().stream().distinct().toList();
        SagaDefinition<D> definition = report.definition();
        if (status == SagaStatus.COMPLETED) {
            for (SagaStep<D> step : definition.steps()) {
                if (!tookEffect.contains(step.name())) {
                    violations.add("completed but step " + step.name() + " never succeeded");
                }
            }
            if (!firstCompensation.isEmpty()) {
                violations.add("completed but compensations ran: " + firstCompensation.keySet());
            }
        }
        if (status == SagaStatus.COMPENSATED) {
            violations.addAll(compensatedSagaStepViolations(definition, report.instance().orElse(null), tookEffect,
                    firstCompensation.keySet(), uncertain.keySet()));
            violations.addAll(compensationOrderViolations(definition, report.compensationEvents()));
        }
        if (!report.crashedAndRecovered()) { // a recovery starts a compensation again as a new attempt, untimed
            violations.addAll(lostCompensationCommandViolations(definition, report.history(),
                    report.environment().transport().messages(RecordingInterceptor.LOST_COMMANDS)));
        }
    }

    /**
     * For a run without a crash, each compensation whose command {@code lost} holds (the messages sent to
     * {@link RecordingInterceptor#LOST_COMMANDS}): the attempt whose command was lost must have failed in
     * {@code history} by its timeout, with the error recorded, and never succeeded (its participant never got it in
     * time); then been retried when its policy retries a timeout, else the saga must have needed attention (an operator
     * retry may follow). One line a compensation: a compensation without a timeout waits for ever, which is said so.
     */
    static List<String> lostCompensationCommandViolations(SagaDefinition<?> definition, List<SagaTransition> history,
                                                          List<Message> lost) {
        List<String> violations = new ArrayList<>();
        for (Message command : lost) {
            if (!SagaMessages.COMPENSATION.equals(command.header(SagaMessages.PHASE).orElse(null))
                    || !SagaRunReport.SAGA_ID.equals(command.sagaId().orElse(null))) {
                continue;
            }
            SagaStep<?> step = definition.step(command.header(SagaMessages.STEP).orElseThrow());
            int attempt = Integer.parseInt(command.header(SagaMessages.ATTEMPT).orElseThrow());
            String of = "the compensation of " + step.name() + " whose command of attempt " + attempt + " was lost ";
            SagaTransition ended = null;
            for (SagaTransition t : history) {
                if (step.name().equals(t.step()) && t.attempt() == attempt
                        && (t.type() == TransitionType.COMPENSATION_SUCCEEDED
                        || t.type() == TransitionType.COMPENSATION_RETRY_SCHEDULED
                        || t.type() == TransitionType.COMPENSATION_FAILED)) {
                    ended = t;
                    break;
                }
            }
            if (ended == null) {
                violations.add(of + (step.compensationTimeout() == null
                        ? "has no timeout (no compensationTimeout, no timeout): the saga waits for its reply for ever,"
                                + " COMPENSATING, and never needs attention, so give the step a compensationTimeout"
                        : "never timed out"));
            } else if (ended.type() == TransitionType.COMPENSATION_SUCCEEDED) {
                violations.add(of + "was recorded as succeeded by that attempt, which its participant never got in"
                        + " time");
            } else if (ended.detail() == null || ended.detail().isBlank()) {
                violations.add(of + "failed with no error recorded (" + ended.type() + ")");
            } else {
                boolean retries = step.compensationRetryPolicy().shouldRetry(new SagaTimeoutException(
                        SagaRunReport.SAGA_ID, step.name(), step.compensationTimeout()), attempt);
                if (retries && ended.type() != TransitionType.COMPENSATION_RETRY_SCHEDULED) {
                    violations.add(of + "timed out and its policy retries a timeout, but it was not retried ("
                            + ended.type() + ")");
                } else if (!retries && (ended.type() != TransitionType.COMPENSATION_FAILED || history.stream()
                        .noneMatch(t -> t.type() == TransitionType.SAGA_NEEDS_ATTENTION))) {
                    violations.add(of + "timed out and its policy gives up, but the saga never needed attention ("
                            + ended.type() + ")");
                }
            }
        }
        return violations;
    }

    /**
     * For a saga that ended compensated: each step that took effect ({@code tookEffect}, by the recorded invocations)
     * with a compensation that never succeeded ({@code compensated}: those whose compensation did), each step
     * compensated that never took effect and was not {@code uncertain} (timed out, or its remote reply failed), and
     * each step with a compensation whose stored status in {@code instance} (null: none read) still needs it. The
     * check by recorded invocations covers only the steps that took effect; an uncertain step may not have, yet the
     * engine must compensate it with the data it has. One line a step: one that took effect, was never compensated and
     * is stored as still needing it is one fault, its line naming the stored status.
     */
    static List<String> compensatedSagaStepViolations(SagaDefinition<?> definition, SagaInstance instance,
                                                      Collection<String> tookEffect, Set<String> compensated,
                                                      Set<String> uncertain) {
        List<String> violations = new ArrayList<>();
        Set<String> neverCompensated = new HashSet<>();
        for (String name : tookEffect) {
            if (definition.step(name).hasCompensation() && !compensated.contains(name)) {
                neverCompensated.add(name);
                StepStatus stored = instance == null ? null : instance.steps().stream()
                        .filter(s -> s.name().equals(name)).map(StepState::status).findFirst().orElse(null);
                violations.add("step " + name + " took effect but was never compensated" + (LEFT_TO_UNDO.contains(stored)
                        ? " (it ended " + stored + " in a compensated saga)" : ""));
            }
        }
        for (String name : compensated) {
            if (!tookEffect.contains(name) && !uncertain.contains(name)) {
                violations.add("step " + name + " was compensated but never took effect");
            }
        }
        if (instance != null) {
            for (StepState state : instance.steps()) {
                if (LEFT_TO_UNDO.contains(state.status()) && definition.step(state.name()).hasCompensation()
                        && !neverCompensated.contains(state.name())) {
                    violations.add("step " + state.name() + " ended " + state.status() + " in a compensated saga: it"
                            + " needs compensation but was never compensated");
                }
            }
        }
        return violations;
    }

    /**
     * The last failure the history recorded, as {@code " (last failure: compensation of x, attempt 3: error)"}, or
     * empty: a scenario that ends in the wrong state then says which code stopped it, not only the states. The
     * detail as recorded (a time-out's names its timeout, a step settled while the saga compensates says so), cut
     * after {@value #FAILURE_DETAIL} characters: an application's message of a megabyte would otherwise go whole into
     * every violation it ends.
     */
    static String lastFailure(List<SagaTransition> history) {
        for (int i = history.size() - 1; i >= 0; i--) {
            SagaTransition t = history.get(i);
            if (t.type() == TransitionType.STEP_FAILED || t.type() == TransitionType.STEP_TIMED_OUT
                    || t.type() == TransitionType.COMPENSATION_FAILED) {
                String what = t.type() == TransitionType.COMPENSATION_FAILED ? "compensation of " : "step ";
                String detail = t.detail() != null ? cut(t.detail())
                        : t.type() == TransitionType.STEP_TIMED_OUT ? "timed out" : null;
                return " (last failure: " + what + t.step() + ", attempt " + t.attempt()
                        + (detail == null ? "" : ": " + detail) + ")";
            }
        }
        return "";
    }

    /** {@code detail} whole up to {@link #FAILURE_DETAIL} characters, else its start (never half a character) and length. */
    private static String cut(String detail) {
        if (detail.length() <= FAILURE_DETAIL) {
            return detail;
        }
        int end = Character.isHighSurrogate(detail.charAt(FAILURE_DETAIL - 1)) ? FAILURE_DETAIL - 1 : FAILURE_DETAIL;
        return detail.substring(0, end) + "... (" + detail.length() + " characters)";
    }

    /**
     * Reverse order, by when compensations start: an attempt of a step's compensation may start only once
     * the compensation of every later group's step that is compensated in the run has succeeded (members of
     * one parallel group may overlap). Ordering by successes alone would let an engine start an earlier
     * step's compensation while a later group was still being undone.
     */
    static List<String> compensationOrderViolations(SagaDefinition<?> definition,
                                                    List<RecordingInterceptor.CompensationEvent> events) {
        Set<String> compensated = new HashSet<>();
        for (RecordingInterceptor.CompensationEvent event : events) {
            if (!event.started()) {
                compensated.add(event.step());
            }
        }
        Set<String> succeeded = new HashSet<>();
        Set<String> violations = new LinkedHashSet<>();
        for (RecordingInterceptor.CompensationEvent event : events) {
            if (!event.started()) {
                succeeded.add(event.step());
                continue;
            }
            int group = definition.step(event.step()).group();
            for (SagaStep<?> later : definition.steps()) {
                if (later.group() > group && compensated.contains(later.name()) && !succeeded.contains(later.name())) {
                    violations.add("compensation of " + event.step() + " started before that of the later step "
                            + later.name() + " succeeded");
                }
            }
        }
        return List.copyOf(violations);
    }
}
