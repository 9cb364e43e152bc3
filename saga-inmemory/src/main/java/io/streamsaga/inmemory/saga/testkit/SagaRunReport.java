package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDataUpcaster;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.spi.SagaStore;

import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * One run of a saga in the test kit, and the "expect" half of given/when/expect. Assertions throw
 * {@link AssertionError} (the kit does not depend on JUnit) and return {@code this} to chain. Not
 * thread-safe.
 *
 * <p>The kit closes what it created for the run (its orchestrators and its {@link SagaTestEnvironment}: bus,
 * transport, virtual clock, executor) once the run is finished: when a call that drives the saga
 * ({@code whenRun()}, {@code whenStarted()}, {@link #settle()}, {@link #advance}, {@link #cancel()}, the operator
 * calls, {@link #upgradeTo}) returns with the saga completed, compensated or resolved and nothing left to deliver or
 * run. A run that needs attention stays open for the operator calls, and one still running (started with
 * {@code whenStarted()}) until a later call finishes it: {@link #close()} it (try-with-resources) to end it sooner.
 *
 * <p>A call that drives the saga and fails (an Error of the application's code, such as a failed assertion, also
 * one a message handler throws while the kit delivers, a fake participant's included; a task of the environment's
 * executor that does not end; a saga that does not settle) closes the run before its exception propagates, a
 * failure to close suppressed in it: the run is in no state to go on, and in a chain
 * ({@code whenStarted().cancel()}) the report is lost with the exception. A call the orchestrator refuses for the
 * saga's state ({@link #cancel()} of a saga past its pivot, an operator call on a saga that does not need
 * attention, {@link #skipCompensation} of a step whose compensation did not fail or that does not exist) throws
 * before it changed anything, and leaves the run as it was, open for the test to go on with the report (an open
 * run holds no thread between calls, so a report lost in a chain leaves nothing running).
 *
 * <p>A closed run still answers every inspection and expectation (they read the store and the
 * recorded invocations). {@link #settle()} and {@link #advance} of a run the kit closed because its saga finished
 * do nothing (nothing is left to settle: {@code whenStarted().settle().expectCompleted()} works whether the saga
 * finished while it started or later); {@link #cancel()}, the operator calls, and {@code settle()} or
 * {@code advance} of a run closed by the test before its saga finished throw {@link IllegalStateException}. The fixture is the application's: never closed by
 * the kit.
 *
 * @param <F> the fixture type (the application services of the run)
 * @param <D> the saga data type
 */
public final class SagaRunReport<F, D> implements AutoCloseable {
    /** The id the kit gives the saga of a run. */
    public static final String SAGA_ID = "test-saga-1";
    /** The business key the kit starts the saga of a run with ({@code StepContext.businessKey()}). */
    public static final String BUSINESS_KEY = "test";
    private final SagaTestEnvironment environment;
    private final F fixture;
    private final SagaDefinition<D> definition;
    private final RecordingInterceptor interceptor;
    private final CrashingSagaStore crashingStore;
    private final SettleLimits limits;
    /** Whether the run's orchestrators put the saga's keys in the MDC ({@link SagaTestKit#logContext}). */
    private final boolean logContext;
    /** The saga's data upcasters by source version, registered on every orchestrator of the run. */
    private final Map<Integer, SagaDataUpcaster> upcasters;
    private SagaOrchestrator orchestrator;
    private boolean recovered;
    private java.util.concurrent.CompletionStage<?> latest;
    private boolean closed;
    /** Closed by {@link #upgradeTo}, whose report drives the run on. */
    private boolean upgraded;
    /** Closed because the saga finished: settling or advancing it then has nothing left to do. */
    private boolean finished;
    /** The writes made before the explorer cancelled the saga ({@link #cancelAfterStart}, {@link #cancelAfterStep}). */
    private volatile int writesBeforeCancel;
    /** The step after whose success the explorer cancels the saga, or null. */
    private final String cancelAfterStep;
    /** Whether that cancel was accepted (the saga not past its pivot nor finished then). */
    private volatile boolean cancelAccepted;

    SagaRunReport(TypeRegistry types, Function<SagaTestEnvironment, F> fixtureFactory,
                  Function<F, SagaDefinition<D>> definitionFactory, Map<String, FailureMode> stepFailures,
                  Map<String, FailureMode> compensationFailures, SettleLimits limits, int crashAt,
                  boolean crashBeforeWrite) {
        this(types, fixtureFactory, definitionFactory, stepFailures, compensationFailures, LostMessages.NONE, limits,
                SagaTestKit.DEFAULT_SEED, false, Map.of(), crashAt, crashBeforeWrite, null);
    }

    /**
     * {@code upcasters}: the saga's data upcasters by source version ({@link SagaTestKit#dataUpcaster});
     * {@code cancelAfterStep}: the crash explorer cancels the saga once that step's success is stored (or null);
     * {@code lost}: the commands and replies the explorer loses; {@code seed}: of the retry jitter;
     * {@code logContext}: the orchestrators' and the bus's ({@link SagaTestKit#logContext}).
     */
    SagaRunReport(TypeRegistry types, Function<SagaTestEnvironment, F> fixtureFactory,
                  Function<F, SagaDefinition<D>> definitionFactory, Map<String, FailureMode> stepFailures,
                  Map<String, FailureMode> compensationFailures, LostMessages lost, SettleLimits limits, long seed,
                  boolean logContext, Map<Integer, SagaDataUpcaster> upcasters, int crashAt, boolean crashBeforeWrite,
                  String cancelAfterStep) {
        this.limits = limits;
        this.logContext = logContext;
        this.upcasters = Map.copyOf(upcasters);
        this.cancelAfterStep = cancelAfterStep;
        // Created first: it also sees the commands the bus publishes (a remote compensation starts with its command).
        this.interceptor = new RecordingInterceptor(stepFailures, compensationFailures, lost);
        this.environment = new SagaTestEnvironment(types, interceptor.commandObserver(), seed, logContext);
        try {
            this.fixture = fixtureFactory.apply(environment);
            this.definition = definitionFactory.apply(fixture);
            for (String step : stepFailures.keySet()) {
                requireFailable(definition, step, false);
            }
            for (String step : compensationFailures.keySet()) {
                requireFailable(definition, step, true);
            }
            this.crashingStore = new CrashingSagaStore(environment.store(), crashAt, crashBeforeWrite);
            if (cancelAfterStep != null) {
                definition.step(cancelAfterStep);
            }
            this.orchestrator = newOrchestrator(crashingStore, cancelAfterStep != null);
        } catch (RuntimeException | Error e) {
            environment.close(); // no report to close it
            throw e;
        }
    }

    /**
     * Throws when {@code definition} has no step {@code step} ({@link ConfigurationException}: a typo in a test must not
     * silently inject nothing), or, for a failure of its {@code compensation}, no compensation of it.
     */
    private static void requireFailable(SagaDefinition<?> definition, String step, boolean compensation) {
        if (!definition.step(step).hasCompensation() && compensation) {
            throw new AssertionError("step '" + step + "' has no compensation to fail");
        }
    }

    /**
     * The run after {@code previous}'s {@link #upgradeTo}: its environment, fixture, store and recordings, with
     * {@code definition} registered on a new orchestrator instead of the previous one's.
     */
    private SagaRunReport(SagaRunReport<F, ?> previous, SagaDefinition<D> definition) {
        this.limits = previous.limits;
        this.logContext = previous.logContext;
        this.upcasters = previous.upcasters;
        this.cancelAfterStep = null;
        this.interceptor = previous.interceptor;
        this.environment = previous.environment;
        this.fixture = previous.fixture;
        this.definition = definition;
        this.crashingStore = previous.crashingStore;
        this.recovered = previous.recovered;
        this.orchestrator = newOrchestrator(crashingStore, false);
    }

    /**
     * {@code cancelling}: with the listener that cancels the saga after {@link #cancelAfterStep}'s success (the first
     * orchestrator only: a cancel lost in a crash is not made again after recovery).
     */
    private SagaOrchestrator newOrchestrator(SagaStore store, boolean cancelling) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder()
                .store(store)
                .bus(environment.bus())
                .scheduler(environment.scheduler())
                .parallelExecutor(Runnable::run) // parallel members one after another: every run reproducible
                .retryJitter(environment.retryJitter()) // seeded, so are the timers a jitter orders
                .interceptor(interceptor)
                .logContext(logContext)
                .register(definition);
        upcasters.forEach((fromVersion, upcaster) -> builder.dataUpcaster(definition.name(), fromVersion, upcaster));
        if (cancelling) {
            builder.listener(new SagaListener() {
                private boolean tried;

                @Override
                public synchronized void onStepCompleted(SagaInstance instance, String step) {
                    if (tried || !step.equals(cancelAfterStep)) {
                        return;
                    }
                    tried = true;
                    writesBeforeCancel = writes();
                    try {
                        // Called after the success is stored, on the thread that drives the saga: a hook may cancel.
                        orchestrator.cancel(SAGA_ID);
                        cancelAccepted = true;
                    } catch (SagaException refused) {
                        // past its pivot, or finished: nothing to explore there
                    }
                }
            });
        }
        return builder.build();
    }

    /** Whether the explorer's cancel after {@code cancelAfterStep}'s success was accepted. */
    boolean cancelAccepted() {
        return cancelAccepted;
    }

    /**
     * Starts the saga, then settles it ({@code settle}) or settles only what is due at the current instant, without
     * moving the clock; a run then finished is closed, as is one that fails to start (its report is lost).
     */
    SagaRunReport<F, D> start(D data, boolean settle) {
        return driving(() -> {
            try {
                latest = orchestrator.start(definition, SAGA_ID, BUSINESS_KEY, data);
            } catch (SimulatedCrash crash) {
                requireCrashPoint(crash); // the process died at a write; settling recovers
            }
            if (settle) {
                settleRounds();
            } else {
                settleUntil(environment.scheduler().now()); // runs only timers due now: the clock does not move
                closeIfFinished();
            }
        });
    }

    /**
     * Runs {@code drive}; a failure closes the run before it propagates (see the class comment): the run is in
     * no state to go on, and a chain ({@code whenStarted().cancel()}) loses the report with the exception.
     */
    private SagaRunReport<F, D> driving(Runnable drive) {
        try {
            drive.run();
        } catch (RuntimeException | Error e) {
            closeAfter(e);
            throw e;
        }
        return this;
    }

    /**
     * An operator call ({@code request}, the orchestrator's), then settles. A RuntimeException from the call is its
     * refusal, thrown before it changed anything (the engine records the RuntimeExceptions of the application's code
     * as the saga's failures, so no other escapes it): the run stays open, as it was. The simulated crash of the
     * run's crash point is recovered from while settling, as when it happens while the saga starts. Another Error
     * thrown while the call drives the saga, or a failure while settling, closes the run ({@link #driving}).
     */
    private SagaRunReport<F, D> operate(Runnable request) {
        ensureOpen();
        try {
            request.run();
        } catch (SimulatedCrash crash) {
            if (!crashingStore.threw(crash)) { // not the kit's crash point: an Error of the application's code
                closeAfter(crash);
                throw crash;
            }
            // the process died during the call, as it may during the start: settling recovers
        } catch (Error e) {
            closeAfter(e);
            throw e;
        }
        return driving(this::settleRounds);
    }

    /**
     * Rethrows {@code crash} unless the run's store threw it (its crash point, which the next settling round
     * recovers from, or a call of the dead orchestrator after it), told by the instance, not by whether the store
     * crashed: a {@link SimulatedCrash} the application's code throws is an Error like any other, also after the run
     * recovered from its crash; nothing recovers the saga from it, so it must fail the test rather than leave the
     * saga running with no run driving it.
     */
    private void requireCrashPoint(SimulatedCrash crash) {
        if (!crashingStore.threw(crash)) {
            throw crash;
        }
    }

    /** Closes the run after {@code failure} without hiding it: a failure to close is suppressed in it. */
    private void closeAfter(Throwable failure) {
        try {
            close();
        } catch (RuntimeException | Error e) {
            failure.addSuppressed(e);
        }
    }

    /**
     * Delivers every message and runs every timer (jumping the virtual clock from one due task to the
     * next) until nothing is left; after a simulated crash, closes the dead orchestrator and recovers on a
     * fresh one over the same store. Timers run one at a time, each once the previous one's consequences settled:
     * the tasks of the environment's {@linkplain SagaTestEnvironment#executor() executor} ended and the messages
     * delivered, also between timers due at the same instant. When the saga is then completed, compensated or
     * resolved, the run is finished and closed (see the class comment); a settle that fails closes it too. Fails
     * ({@link AssertionError}) on a run that does not settle: more than {@link SagaTestKit#maxRoundsAtOneInstant}
     * settling rounds (messages delivered, timers run) at one virtual instant without the clock moving (a livelock:
     * handlers that answer each other for ever, a task rescheduling itself with no delay), or more than
     * {@link SagaTestKit#maxTimersToSettle} timers run with more still due (a timer that repeats for ever never
     * settles: {@link #advance} over it instead); 100,000 each by default.
     */
    public SagaRunReport<F, D> settle() {
        if (finished) {
            return this;
        }
        ensureOpen();
        return driving(this::settleRounds);
    }

    private void settleRounds() {
        settleUntil(null);
        closeIfFinished();
    }

    /**
     * Settles at each due time up to {@code until} (every due time when null): waits for the executor's tasks,
     * recovers after a crash, delivers the messages, and only once nothing is left runs the next timer, one at a
     * time, so that no timer (not even one due at the same instant) overtakes what the previous one started.
     * Fails ({@link AssertionError}) on a livelock: more than {@link SettleLimits#roundsAtOneInstant()} rounds (a
     * message delivered, a timer run) at one virtual instant without the clock moving, the delivery bounded so that
     * handlers answering each other for ever are caught too; and, with no {@code until}, after
     * {@link SettleLimits#timersToSettle()} timers (one that repeats for ever never lets the run settle). Any number
     * of timers runs up to {@code until}.
     */
    private void settleUntil(Instant until) {
        VirtualScheduler scheduler = environment.scheduler();
        Instant instant = scheduler.now();
        environment.clearDeliveries();
        long roundsAtInstant = 0; // long: a bound of Integer.MAX_VALUE plus the one past it
        int timers = 0;
        while (true) {
            if (!scheduler.now().equals(instant)) {
                instant = scheduler.now();
                roundsAtInstant = 0;
                environment.clearDeliveries();
            }
            environment.awaitExecutor();
            if (recoverIfCrashed()) {
                continue;
            }
            // A compensation command the explorer lost turns up late, after the next one of its step was sent: as the
            // broker's redelivery, on the participant's own topic, past the bus (its id and headers unchanged).
            for (Message late : interceptor.takeRedeliveries()) {
                environment.transport().send(late);
            }
            // At most one delivery past the bound: the loop must end even when each delivery publishes another.
            int delivered = environment.transport().drain(
                    (int) Math.min(Integer.MAX_VALUE, limits.roundsAtOneInstant() - roundsAtInstant + 1));
            rethrowHandlerError();
            roundsAtInstant += delivered;
            requireProgress(roundsAtInstant, instant);
            if (recoverIfCrashed() || delivered > 0) {
                continue;
            }
            Optional<Instant> next = scheduler.nextDueAt();
            if (next.isEmpty() || (until != null && next.get().isAfter(until))) {
                return;
            }
            if (until == null && ++timers > limits.timersToSettle()) {
                throw new AssertionError("the run does not settle: " + limits.timersToSettle() + " timers ran and more"
                        + " are due (a timer that repeats for ever, a step retried for ever?): advance(Duration) runs the"
                        + " timers up to an instant, and a run that needs more timers to settle can raise"
                        + " SagaTestKit.maxTimersToSettle(int); status " + instance().map(SagaInstance::status).orElse(null));
            }
            if (!next.get().isAfter(instant)) { // a timer due now: another round at this instant
                requireProgress(++roundsAtInstant, instant);
            }
            try {
                scheduler.runNext(next.get());
            } catch (SimulatedCrash crash) {
                requireCrashPoint(crash); // recovered on the next round
            }
        }
    }

    /**
     * Fails the call once more than the bound of rounds ran at {@code instant}, naming the instant and what was
     * delivered at it (the topics and types that answer each other), else a task rescheduling itself.
     */
    private void requireProgress(long roundsAtInstant, Instant instant) {
        if (roundsAtInstant <= limits.roundsAtOneInstant()) {
            return;
        }
        Map<String, Integer> delivered = environment.deliveries();
        String what = delivered.isEmpty()
                ? "no message delivered: a task rescheduling itself with no delay?"
                : "handlers answering each other for ever? delivered at that instant: " + delivered.entrySet().stream()
                        .sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                        .limit(10)
                        .map(e -> e.getKey() + " x" + e.getValue())
                        .collect(Collectors.joining(", "));
        throw new AssertionError("the run does not settle: more than " + limits.roundsAtOneInstant()
                + " rounds (messages delivered, timers run) at " + instant + " without the virtual clock moving ("
                + what + "); a burst that ends but is larger: raise SagaTestKit.maxRoundsAtOneInstant(int); status "
                + instance().map(SagaInstance::status).orElse(null));
    }

    /**
     * Throws the first Error a handler threw while the kit delivered (a participant's failed assertion, the
     * application's {@link SimulatedCrash}, an Error of the orchestrator's reply handling), other than the run's
     * crash point (recovered from): the bus would dead-letter it or the transport deliver it again, and the test
     * would only see a saga left running. The call then fails with it, the run closed ({@link #driving}).
     */
    private void rethrowHandlerError() {
        for (Error error : environment.takeHandlerErrors()) {
            if (!(error instanceof SimulatedCrash crash && crashingStore.threw(crash))) {
                throw error;
            }
        }
    }

    /**
     * Closes the run when it is finished: the saga completed, compensated or resolved, and nothing is left to
     * deliver, run or call (a message or timer left is kept for the test to see). Every call that drives the saga
     * ends with it.
     */
    private void closeIfFinished() {
        if (instance().map(i -> i.status().isTerminal()).orElse(false)
                && environment.transport().pendingCount() == 0 && environment.scheduler().nextDueAt().isEmpty()) {
            finished = true;
            close();
        }
    }

    private boolean recoverIfCrashed() {
        if (!crashingStore.crashed() || recovered) {
            return false;
        }
        recovered = true;
        orchestrator.close();
        orchestrator = newOrchestrator(environment.store(), false);
        orchestrator.recover();
        latest = null;
        return true;
    }

    /**
     * Moves the virtual clock forward, settling the run at each due time on the way as {@link #settle()} does: the
     * timers due up to the new instant run one at a time, each once the previous one's consequences settled (the
     * environment's {@linkplain SagaTestEnvironment#executor() executor} idle, the messages delivered, what they
     * scheduled for that instant run), so that work a timer started (a retry's, a reply a participant sends) is not
     * overtaken by a later timer (the step's timeout), and nothing due by the new instant is left when it returns.
     * When the saga is then completed, compensated or resolved and nothing is left to deliver or run, the run is
     * finished and closed (see the class comment); an advance that fails closes it too. Any number of timers may run
     * on the way (an application's timer every second over a month); it fails ({@link AssertionError}) only on a
     * livelock: more than {@link SagaTestKit#maxRoundsAtOneInstant} settling rounds (messages delivered, timers run)
     * at one virtual instant without the clock moving.
     *
     * @throws ConfigurationException when {@code duration} is null or negative (the clock never moves
     *                                backwards, and taking it as zero would let the test read a saga that
     *                                did not move as one checked later), before anything runs: the run
     *                                stays as it was, open or finished
     */
    public SagaRunReport<F, D> advance(Duration duration) {
        // As VirtualScheduler.advance checks it: scheduler.after takes a negative delay as zero, as schedule does.
        ConfigurationException.require(duration != null && !duration.isNegative(), "advance(Duration)"
                + " cannot move the virtual clock backwards: its duration must be zero or positive, but was %s", duration);
        if (finished) {
            return this;
        }
        ensureOpen();
        VirtualScheduler scheduler = environment.scheduler();
        Instant target = scheduler.after(duration);
        return driving(() -> {
            settleUntil(target);
            scheduler.advanceTo(target); // nothing is due by then: only moves the clock
            closeIfFinished();
        });
    }

    /**
     * Cancels the saga, then settles. Refused ({@link io.streamsaga.saga.SagaException}) when the saga is not
     * running or is past its pivot: the run then stays open (see the class comment). As
     * {@link io.streamsaga.saga.SagaOrchestrator#cancel} does, it waits for the outcome of an asynchronous action in
     * flight: settling runs the step's timeout, if it has one (the clock jumps to it); with none, the saga stays
     * {@code COMPENSATING} and the run open until the stage completes (then {@link #settle()}), for ever if it never
     * does.
     */
    public SagaRunReport<F, D> cancel() {
        return operate(() -> orchestrator.cancel(SAGA_ID));
    }

    /** {@link #cancel()} by the crash explorer, which numbers the crash points of the cancellation from here. */
    SagaRunReport<F, D> cancelAfterStart() {
        writesBeforeCancel = writes();
        return cancel();
    }

    /** The writes made before the explorer cancelled the saga ({@link #cancelAfterStart}). */
    int writesBeforeCancel() {
        return writesBeforeCancel;
    }

    /**
     * Operator: retries the failed compensations, then settles. Refused ({@link io.streamsaga.saga.SagaException})
     * when the saga does not need attention: the run then stays open (see the class comment).
     */
    public SagaRunReport<F, D> retryCompensation() {
        return operate(() -> latest = orchestrator.retryCompensation(SAGA_ID));
    }

    /**
     * Operator: skips the failed compensation of {@code step}, then settles. Refused when the saga does not need
     * attention or that compensation did not fail ({@link io.streamsaga.saga.SagaException}), or the saga has no
     * such step ({@link io.streamsaga.ConfigurationException}): the run then stays open (see the class comment).
     */
    public SagaRunReport<F, D> skipCompensation(String step) {
        return operate(() -> latest = orchestrator.skipCompensation(SAGA_ID, step));
    }

    /**
     * Operator: marks the saga resolved. Refused ({@link io.streamsaga.saga.SagaException}) when the saga does not
     * need attention: the run then stays open (see the class comment).
     */
    public SagaRunReport<F, D> markResolved() {
        return operate(() -> {
            orchestrator.markResolved(SAGA_ID);
            latest = null;
        });
    }

    /**
     * Simulates an upgrade of the application, as a test of its versioned definitions and data upcasters: the process
     * stops (the run's orchestrator closes, as in a shutdown: the saga stops where it was, its timers with it; the
     * store, the bus's messages and the fixture stay, as the application's database and broker would), and a new
     * orchestrator starts over the same store with {@code definition} registered instead of the run's (a newer version
     * of the saga, built over the run's fixture) and the kit's {@linkplain SagaTestKit#dataUpcaster data upcasters};
     * its {@link SagaOrchestrator#recover()} resumes the saga, under the version it was stored with if that is the one
     * registered, else migrated to it through the upcasters (a {@code SAGA_MIGRATED} transition in {@link #history()}),
     * as docs/sagas.md ("Versions") says. Then settles what is due at the current instant, as
     * {@link SagaTestKit#whenStarted()} does. A saga that needs attention is not resumed: its operator calls on the
     * returned report migrate it. Upgrade a run still open: started with {@code whenStarted()}, or needing attention (a
     * run finished is closed: it cannot be upgraded).
     *
     * <p>{@code failures} are injected into the steps and compensations of {@code definition} from the upgrade on, as
     * {@link SagaTestKit#failStep} and {@link SagaTestKit#failCompensation} inject theirs into the definition the run
     * starts with, which they are checked against: so a step or compensation only the newer version has can be failed.
     * The kit's own failures go on striking the steps of their names; one given here for a step (or compensation) the
     * kit fails already replaces it, its strikes counted from the upgrade. Two given for one step (or one compensation)
     * are refused as conflicting.
     *
     * <p>Returns the report of the upgraded run, which drives it on and closes it; this one can still be read (the
     * recordings, store and history are shared) but no longer driven, nor closed ({@link #isClosed()} is then true).
     *
     * @throws AssertionError          when the recovery leaves the saga unresolvable: not migrated (an upcaster missing
     *                                 on the way from its version, named; else the reason the orchestrator gave
     *                                 ({@link SagaOrchestrator.RecoveryReport#unresolvableReasons()}), quoted: an
     *                                 upcaster that threw, with its exception, or returned no data; data the new
     *                                 version's class cannot read; a step it started that the new version no longer
     *                                 has; a saga past its pivot given a compensatable step), the run then closed (this
     *                                 report says so: no report drives it), the saga left in the store as it was
     * @throws IllegalStateException   when the run is closed or was upgraded already (a definition that fails to build
     *                                 throws its own exception too, as does a failure naming a step {@code definition}
     *                                 does not have, {@link ConfigurationException}, or a compensation it does not have,
     *                                 {@link AssertionError}, and the new orchestrator's build refusing the definition
     *                                 (a remote step or compensation of it waiting for a reply of a class the kit's
     *                                 bus's codec cannot decode to, {@link ConfigurationException}): that orchestrator
     *                                 is built before the run's closes, so each leaves the run as it was)
     */
    public <E> SagaRunReport<F, E> upgradeTo(Function<F, SagaDefinition<E>> definition, FailureInjection... failures) {
        Objects.requireNonNull(definition, "definition");
        List<FailureInjection> injected = List.of(failures); // refuses a null one
        ensureOpen();
        // Built and checked first: a definition that fails to build, or a failure it cannot take, changes nothing, and
        // leaves the run open.
        SagaDefinition<E> upgradedTo = Objects.requireNonNull(definition.apply(fixture), "the definition upgraded to");
        Set<String> named = new HashSet<>();
        for (FailureInjection failure : injected) {
            requireFailable(upgradedTo, failure.step(), failure.compensation());
            String place = (failure.compensation() ? "the compensation of '" : "step '") + failure.step() + "'";
            if (!named.add(place)) { // two for one place conflict: neither can be the one the test meant
                throw new ConfigurationException("upgradeTo: two failures given for " + place);
            }
        }
        // The new orchestrator is built before the run's is closed: one its build refuses (a reply class the bus's
        // codec cannot decode to, say) leaves the run as it was. The two share the store and the bus for a moment:
        // the new one neither recovers nor is handed a message before resumeAfterUpgrade (the kit delivers by hand,
        // and gives the orchestrators no ownership nor recovery sweep), so only the run's drives the saga meanwhile.
        SagaRunReport<F, E> next = new SagaRunReport<>(this, upgradedTo);
        driving(() -> {
            try {
                orchestrator.close();
            } catch (RuntimeException | Error e) {
                next.closeOrchestratorAfter(e); // the run closes (driving): the new orchestrator must not stay open
                throw e;
            }
            // Once the previous version's orchestrator is closed: its steps are no longer run.
            injected.forEach(failure -> interceptor.inject(failure.step(), failure.compensation(), failure.mode()));
        });
        upgraded = true; // the next report owns the environment from here: this one must not close it
        closed = true;
        try {
            return next.resumeAfterUpgrade();
        } catch (RuntimeException | Error e) {
            upgraded = false; // the upgraded run failed and closed, its report lost: none drives the run
            throw e;
        }
    }

    /** Closes this report's orchestrator after {@code failure} without hiding it: a failure to close is suppressed. */
    private void closeOrchestratorAfter(Throwable failure) {
        try {
            orchestrator.close();
        } catch (RuntimeException | Error e) {
            failure.addSuppressed(e);
        }
    }

    /** The recovery of a run just upgraded ({@link #upgradeTo}), then what is due now, as in {@code whenStarted()}. */
    private SagaRunReport<F, D> resumeAfterUpgrade() {
        return driving(() -> {
            SagaInstance stored = instance().orElseThrow(() -> new AssertionError("the saga was never stored"));
            SagaOrchestrator.RecoveryReport recovery = orchestrator.recover();
            if (recovery.unresolvable().contains(SAGA_ID)) {
                throw new AssertionError("the upgrade left saga " + SAGA_ID + " unresolvable, stored as '"
                        + stored.sagaName() + "' version " + stored.definitionVersion() + ", not migrated to '"
                        + definition.name() + "' version " + definition.version() + ", the one registered: "
                        + whyNotMigrated(stored, recovery.unresolvableReasons().get(SAGA_ID)));
            }
            settleUntil(environment.scheduler().now());
            closeIfFinished();
        });
    }

    /**
     * Why the recovery could not resume {@code stored} under {@link #definition}: what the kit can tell from what it
     * registered (a missing upcaster, named with the call that registers it), else {@code reason}, the orchestrator's
     * ({@link SagaOrchestrator.RecoveryReport#unresolvableReasons()}), not prefaced with a cause the kit did not check.
     */
    private String whyNotMigrated(SagaInstance stored, String reason) {
        int from = stored.definitionVersion();
        if (!stored.sagaName().equals(definition.name())) {
            return "a saga migrates only to another version of its own name";
        }
        if (definition.version() < from) {
            return "a saga migrates only to a newer version";
        }
        if (definition.version() == from) {
            // No migration: the orchestrator's reason says what (steps, data, a store failure); the kit adds its advice
            // only where it sees the stored steps differ itself.
            boolean otherSteps = !stored.steps().stream().map(StepState::name).toList()
                    .equals(definition.steps().stream().map(SagaStep::name).toList());
            return "the orchestrator could not resume it under the version it is stored with: " + reason
                    + (otherSteps ? "; change steps under a new version, with an upcaster" : "");
        }
        List<Integer> missing = IntStream.range(from, definition.version()).filter(v -> !upcasters.containsKey(v))
                .boxed().toList();
        if (!missing.isEmpty()) {
            return "no data upcaster from version " + missing.stream().map(String::valueOf)
                    .collect(Collectors.joining(", ")) + " is registered (SagaTestKit.dataUpcaster(fromVersion,"
                    + " upcaster), one for each version on the way)";
        }
        return "the orchestrator refused the migration: " + reason;
    }

    /**
     * Closes what the kit created for this run: its orchestrator (a saga still running stops, as in a process
     * that shuts down) and its environment. Idempotent; the kit calls it when the run is finished (see the class
     * comment). Inspections and expectations keep working.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            orchestrator.close();
        } finally {
            environment.close();
        }
    }

    /** Whether the run was closed ({@link #close()}): finished, or closed by the test. */
    public boolean isClosed() {
        return closed;
    }

    private void ensureOpen() {
        if (upgraded) {
            throw new IllegalStateException("the run was upgraded (upgradeTo): the report upgradeTo returned drives it,"
                    + " this one can be read, not driven");
        }
        if (closed) {
            throw new IllegalStateException("the run is closed (the saga is "
                    + instance().map(i -> i.status().toString()).orElse("not stored") + "): it can be read, not driven");
        }
    }

    // ---------------------------------------------------------------- inspection

    public F fixture() {
        return fixture;
    }

    public SagaTestEnvironment environment() {
        return environment;
    }

    public SagaDefinition<D> definition() {
        return definition;
    }

    /** The orchestrator driving the saga now (a fresh one after a simulated crash). */
    public SagaOrchestrator orchestrator() {
        return orchestrator;
    }

    /** Whether a simulated crash happened and the saga was recovered. */
    public boolean crashedAndRecovered() {
        return recovered;
    }

    /** What each write through the run's crashing store stored, in order (see {@link CrashingSagaStore#written()}). */
    List<String> written() {
        return crashingStore.written();
    }

    /** The writes up to the run's crash point (see {@link CrashingSagaStore#writtenUntilCrash()}). */
    List<String> writtenUntilCrash() {
        return crashingStore.writtenUntilCrash();
    }

    /** Writes to the store so far (crash points are numbered by them). */
    public int writes() {
        return crashingStore.writes();
    }

    public Optional<SagaInstance> instance() {
        return environment.store().find(SAGA_ID);
    }

    public SagaStatus status() {
        return instance().map(SagaInstance::status).orElseThrow(() -> new AssertionError("the saga was never stored"));
    }

    public List<SagaTransition> history() {
        return environment.store().history(SAGA_ID);
    }

    /** Every invocation of an action, reply handler or compensation, in order. */
    public List<RecordedInvocation> invocations() {
        return interceptor.invocations();
    }

    /** The starts and successes of compensation attempts, in order. */
    List<RecordingInterceptor.CompensationEvent> compensationEvents() {
        return interceptor.compensationEvents();
    }

    /** The run as a Mermaid sequence diagram. */
    public String sequenceDiagram() {
        return io.streamsaga.saga.SagaDiagrams.sequence(definition.name(), history());
    }

    /** The saga's result; fails when the saga has not finished. */
    @SuppressWarnings("unchecked")
    public SagaResult<D> result() {
        // The stage of this process keeps the original exception; the orchestrator's lookup has only the record.
        CompletableFuture<?> future = latest != null && latest.toCompletableFuture().isDone()
                && !latest.toCompletableFuture().isCompletedExceptionally()
                ? latest.toCompletableFuture() : orchestrator.result(SAGA_ID).toCompletableFuture();
        if (!future.isDone() || future.isCompletedExceptionally()) {
            throw new AssertionError("the saga has no result: status " + status());
        }
        return (SagaResult<D>) (SagaResult<?>) future.join();
    }

    /** Steps whose action (or reply handling) succeeded, in order. */
    public List<String> stepsSucceeded() {
        return invocations().stream().filter(i -> i.isForward() && i.succeeded()).map(RecordedInvocation::step).toList();
    }

    /** Steps whose compensation succeeded, in order. */
    public List<String> compensationsSucceeded() {
        return invocations().stream().filter(i -> !i.isForward() && i.succeeded()).map(RecordedInvocation::step).toList();
    }

    // ---------------------------------------------------------------- expectations

    public SagaRunReport<F, D> expectStatus(SagaStatus expected) {
        SagaStatus actual = status();
        if (actual != expected) {
            throw new AssertionError("expected the saga to be " + expected + " but it is " + actual + "\n" + sequenceDiagram());
        }
        return this;
    }

    public SagaRunReport<F, D> expectCompleted() {
        return expectStatus(SagaStatus.COMPLETED);
    }

    public SagaRunReport<F, D> expectCompensated() {
        return expectStatus(SagaStatus.COMPENSATED);
    }

    public SagaRunReport<F, D> expectNeedsAttention() {
        return expectStatus(SagaStatus.FAILED_NEEDS_ATTENTION);
    }

    /** The steps that succeeded, in this exact order. */
    public SagaRunReport<F, D> expectSteps(String... steps) {
        return expectList("steps succeeded", Arrays.asList(steps), stepsSucceeded());
    }

    /** The compensations that succeeded, in this exact order. */
    public SagaRunReport<F, D> expectCompensations(String... steps) {
        return expectList("compensations succeeded", Arrays.asList(steps), compensationsSucceeded());
    }

    /**
     * How many attempts of the step started: for a local step, the invocations of its action; for a remote step, the
     * commands sent for it, whether a reply came, was rejected or never came (a timeout), not the handlings of its
     * replies, which {@link #invocations()} lists, and each attempt whose command could not be built (its command
     * factory threw, as a local action may: the attempt started, no command left). An action run again, or a command
     * sent again, by a recovery (after a simulated crash, or {@link #upgradeTo}'s) counts too (a command of another
     * saga the fixture runs on the kit's bus does not), as does an attempt whose failure was injected ({@link
     * SagaTestKit#failStep}: before the action, or when the reply is handled).
     *
     * @throws io.streamsaga.ConfigurationException when the saga has no such step (a typo would pass as "never
     *                                              attempted"), as {@link SagaTestKit#failStep} does
     */
    public SagaRunReport<F, D> expectAttempts(String step, int attempts) {
        definition.step(step);
        int actual = interceptor.stepAttempts(step, history());
        if (actual != attempts) {
            throw new AssertionError("expected " + attempts + " attempts of step " + step + " but saw " + actual);
        }
        return this;
    }

    /** The step recorded as the saga's original failure. */
    public SagaRunReport<F, D> expectFailureAt(String step) {
        String actual = instance().map(i -> i.failure() == null ? null : i.failure().step()).orElse(null);
        if (!step.equals(actual)) {
            throw new AssertionError("expected the saga to fail at " + step + " but its failure is at " + actual);
        }
        return this;
    }

    private SagaRunReport<F, D> expectList(String what, List<String> expected, List<String> actual) {
        if (!expected.equals(actual)) {
            throw new AssertionError("expected " + what + " " + expected + " but were " + actual + "\n" + sequenceDiagram());
        }
        return this;
    }
}
