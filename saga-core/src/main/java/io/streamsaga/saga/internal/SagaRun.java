package io.streamsaga.saga.internal;

import io.streamsaga.internal.bus.DefaultEventBus;
import io.streamsaga.codec.DecodingException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepRole;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.LogContext;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.StepContext;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

/**
 * Drives one saga instance. Every state change is staged ({@link #stage}) and written to the store
 * ({@link #flush}) before the engine acts on it: before it calls the application, sends a message,
 * notifies a listener, arms a timer or completes the result. With a store that takes transition batches,
 * the transitions between two such acts (step n succeeded, step n+1 started) go in one write. All entry
 * points (start, async completions, replies, timers, operator calls) synchronise on the run; the lock is
 * uncontended on the local fast path, where the whole saga runs on the starting thread (a parallel group's
 * synchronous members, and the members' compensations, run on the orchestrator's parallel executor).
 * {@link #drive()} is a trampoline: re-entrant calls (a listener cancelling, an already-completed stage) only
 * ask for one more pass.
 */
final class SagaRun<D> {
    private static final Logger log = LoggerFactory.getLogger(SagaRun.class);

    private final DefaultSagaOrchestrator orchestrator;
    final SagaDefinition<D> definition;
    /** The definition's steps (hot loops index the array); where each group starts is {@link StepStates#groupStart}. */
    private final SagaStep<D>[] steps;
    /** The definition's shared common-path step states. */
    private final StepStates shared;
    /** Drive straight through while on the common path ({@link #forwardStraight}, {@link #compensateStraight}). */
    private final boolean straight;
    /** Completed when the saga finishes; replaced when an operator resumes a finished run. */
    private CompletableFuture<SagaResult<D>> future = new CompletableFuture<>();
    /** The instance's fixed fields (its name and definition version are the definition's). */
    private final String sagaId;
    private final String businessKey;
    private final String dataType;
    private final Instant createdAt;
    /** The run's state: as stored, plus the staged changes (see {@link #snapshot()}). */
    private List<StepState> stepStates;
    private SagaStatus status;
    private SagaFailure failure;
    private SagaFailure compensationFailure;
    private Instant updatedAt;
    /** {@link #snapshot()} of the current state, or null after a change. */
    private SagaInstance snapshot;
    private D data;
    private Throwable exception;
    /** An action or compensation of the step is executing in this process. */
    private final boolean[] inFlight;
    /** This process sent the step's command or armed its timer (false after recovery until re-armed). */
    private boolean[] attached;
    private static final boolean[] NO_FLAGS = new boolean[0];
    /**
     * An attempt of the step failed uncertainly (timed out, its reply rejected) and a retry was scheduled. Null
     * in a run read from the store until needed: then read from its history ({@link #uncertainAttempts}).
     */
    private boolean[] uncertainAttempt;
    /**
     * One slot per step, holding its current timer (its timeout or its retry, a {@link StepTimer}), allocated
     * when the first timer is armed: local sagas arm none.
     */
    private Scheduler.Cancellable[] timers;
    private static final Scheduler.Cancellable[] NO_TIMERS = new Scheduler.Cancellable[0];
    private boolean driving;
    /** Off the common path: null until first needed. */
    private Uncommon uncommon;

    /**
     * A run's state that the common path never needs, in one object allocated when first needed: a field of
     * the run each would make every run bigger (SagaBenchmark's allocation per saga).
     */
    private static final class Uncommon {
        /**
         * An Error that stopped the run while an outcome was recorded inside a drive pass (a stage already
         * complete when returned settles there, in its dependent, which would swallow the Error): the pass
         * rethrows it to its caller, as it does an Error from a synchronous action. Null otherwise.
         */
        Error abandonedWhileDriving;
        /**
         * Per step, the interceptors' open invocation of its asynchronous action or of its asynchronous (or
         * parallel member's) compensation, from its {@code before()} to its {@code after()}: ended by its
         * outcome, its timeout or the run stopping, whichever comes first ({@link #endInvocation}), so that
         * {@code after()} is called once. Null until the first opens.
         */
        SagaInterceptor.Invocation[] openInvocations;
        /** Why the run stopped ({@link #stop}), for an operator call that returns nothing: see {@link #requireWritten}. */
        Throwable stopReason;
        /**
         * The version the saga had when the operator call in progress began (its own write not stored while the run's
         * stored version is still this one), or -1 outside one: a write refused then is the call's ({@link #flush}).
         */
        long operatorCallFrom = -1;
        /**
         * The run's state when the operator call in progress began, when the run was driven here before it (someone
         * may wait for its result) and had nothing staged: a write of the call that the store refuses then puts it back
         * ({@link #restoreBeforeTheCall}) and the run goes on as if the call had not been made. Null otherwise.
         */
        BeforeTheCall beforeTheCall;
        /** The refusal of the operator call in progress, the run put back as before it: the call's to throw or fail with. */
        StreamSagaException refusedCall;
        /** Created over the stored saga for the operator call about to be made ({@code runFor}): driven by nobody yet. */
        boolean createdForACall;
        /**
         * The errors staged as transitions' details (a compensation's failure, say) while the run records no
         * transitions ({@link #pending} null), so that a write the store refuses carries them ({@link
         * #refusedAfterTheStart}) as the recorded transitions would; null when none, dropped with what is staged. Not
         * the run's {@link #exception}, which a refusal carries anyway: a saga whose step fails keeps nothing here.
         */
        List<Throwable> unrecordedErrors;
        /**
         * Per step, the deadline of the attempt of its remote compensation that this run sent, when the compensation has
         * a timeout: a reply after it is the timeout's ({@link #onCompensationReply}). Not stored, as a compensation's
         * attempt is not resumed but started again after a restart. Null until the first is set.
         */
        Instant[] compensationDeadlines;
        /**
         * The compensations that failed for good in what is staged, logged at ERROR once their write is stored (or fails
         * for a reason of this node's, or is not staged at all, the run stopped by close(): onCompensationFailure) but
         * not when it loses to another orchestrator's, which moved the saga on (its reply reached that node, say): the
         * saga did not fail then ({@link #movedOnElsewhere}). Null when none.
         */
        List<String> unloggedFailures;
    }

    /** What an operator call may change before its own write is stored (see {@link Uncommon#beforeTheCall}). */
    private record BeforeTheCall(List<StepState> stepStates, SagaStatus status, SagaFailure failure,
                                 SagaFailure compensationFailure, Instant updatedAt, SagaInstance snapshot, Object data,
                                 Throwable exception, boolean finished, int changes) {
    }

    /** Groups before this one all succeeded: a step of a running saga never leaves SUCCEEDED. */
    private int forwardFrom;
    private boolean stopped;
    private boolean finished;
    /** The instance version in the store: 0 until the start is inserted. */
    private long storedVersion;
    /** The staged transitions' parts; null when the store is given none (it batches and keeps no history). */
    private final PendingTransitions pending;
    /** How many transitions are staged. */
    private int staged;
    /** Commands to write with the staged transitions (stores with transactional messages only). */
    private List<Message> commands;
    /** Counts staged changes: a drive pass loops until one stages none (compared for change only, so it may wrap). */
    private int changes;
    /**
     * The clock, read once per burst of engine work: reset when a pass starts and whenever the application
     * ran (an action, a compensation, a reply's handler, a group's merge, the listeners, the interceptors), so a
     * transition's time is at most the engine's own bookkeeping late (a clock read costs about as much as a whole
     * transition); the start a timeout counts from is read afresh ({@link #startOf}).
     */
    private Instant now;

    /** A run of an instance read from the store. */
    SagaRun(DefaultSagaOrchestrator orchestrator, SagaDefinition<D> definition, SagaInstance stored, D data) {
        this(orchestrator, definition, orchestrator.stepStates(definition), stored.sagaId(), stored.businessKey(), stored.dataType(), stored.createdAt(), data);
        this.stepStates = stored.steps();
        this.status = stored.status();
        this.failure = stored.failure();
        this.compensationFailure = stored.compensationFailure();
        this.updatedAt = stored.updatedAt();
        this.snapshot = stored;
        this.storedVersion = stored.version();
        this.uncertainAttempt = null; // an attempt before this run may have timed out: the history says
    }

    /** A saga just started at {@code now}: not stored yet, its {@code SAGA_STARTED} staged (version 1). */
    SagaRun(DefaultSagaOrchestrator orchestrator, SagaDefinition<D> definition, StepStates shared, String sagaId,
            String businessKey, D data, Instant now) {
        // Its start to the microsecond, what a database keeps of it: the ids of its messages, which hold it, are then
        // the same when the saga is read back from the store (a command sent again after a recovery).
        this(orchestrator, definition, shared, sagaId, businessKey, definition.dataType(),
                now.truncatedTo(java.time.temporal.ChronoUnit.MICROS), data);
        this.stepStates = shared.pending;
        this.status = SagaStatus.RUNNING;
        this.updatedAt = now;
        this.now = now;
        record(TransitionType.SAGA_STARTED, null, 0, null, now);
    }

    private SagaRun(DefaultSagaOrchestrator orchestrator, SagaDefinition<D> definition, StepStates shared, String sagaId,
                    String businessKey, String dataType, Instant createdAt, D data) {
        this.orchestrator = orchestrator;
        this.definition = definition;
        this.shared = shared;
        this.steps = shared.steps();
        this.straight = shared.straight && orchestrator.drivesStraight();
        this.sagaId = sagaId;
        this.businessKey = businessKey;
        this.dataType = dataType;
        this.createdAt = createdAt;
        this.data = data;
        this.inFlight = new boolean[steps.length];
        this.attached = NO_FLAGS;
        this.uncertainAttempt = NO_FLAGS;
        this.timers = NO_TIMERS;
        this.pending = orchestrator.recordsTransitions() ? new PendingTransitions() : null;
    }

    String sagaId() {
        return sagaId;
    }

    /** The saga's start, to the microsecond: in the ids of its messages ({@link SagaMessages#commandId}). */
    Instant createdAt() {
        return createdAt;
    }

    synchronized SagaInstance instance() {
        return snapshot();
    }

    /** Runs passes until one changes nothing (or the run stops). */
    synchronized void drive() {
        if (driving) {
            return; // the outer pass sees the new change and loops
        }
        now = null;
        passes();
    }

    /**
     * The first drive of a saga just started (the clock read for its start is still current); returns its
     * result, taken under the same lock.
     */
    synchronized CompletableFuture<SagaResult<D>> driveStarted() {
        if (!driving) {
            passes();
        }
        return future;
    }

    private void passes() {
        // Off, the common path is the passes alone: nothing in them grows for the option (SagaBenchmark's sagaSuccess).
        if (orchestrator.logContext()) {
            passesWithLogContext();
        } else {
            passesInContext();
        }
    }

    private void passesWithLogContext() {
        String[] previous = enterLogContext();
        try {
            passesInContext();
        } finally {
            leaveLogContext(previous);
        }
    }

    /**
     * Puts the saga's keys in the MDC (no step), when the orchestrator asks for them: the driving thread's log lines,
     * the application's and the engine's, then carry them. Returns what the thread had, for {@link #leaveLogContext};
     * null when off.
     */
    String[] enterLogContext() {
        return orchestrator.logContext() ? LogContext.putSaga(sagaId, definition.name(), null) : null;
    }

    /**
     * A DEBUG line about this saga from outside a drive (a late outcome or a cancelled timer ignored, perhaps on
     * another thread), with the saga's keys when the orchestrator asks for them, as a drive's lines have. Callers check
     * {@code log.isDebugEnabled()} first, so that no arguments array is built for a line not written.
     */
    private void debugOutsideADrive(String format, Object... arguments) {
        String[] previous = enterLogContext();
        try {
            log.debug(format, arguments);
        } finally {
            leaveLogContext(previous);
        }
    }

    /** Puts back what {@link #enterLogContext} or {@link #enterStep} returned (null: nothing was put). */
    void leaveLogContext(String[] previous) {
        if (previous != null) {
            LogContext.restoreSaga(previous);
        }
    }

    /**
     * Puts the saga's keys and {@code step}'s in the MDC while the application's code for the step runs on this thread
     * (its action, compensation, command factory, reply handler, and the interceptors around them), when the
     * orchestrator asks for them; null when off. The saga's too, not the step alone: a parallel member runs on
     * another thread, a reply's handler outside a drive.
     */
    private String[] enterStep(SagaStep<D> step) {
        return orchestrator.logContext() ? LogContext.putSaga(sagaId, definition.name(), step.name()) : null;
    }

    private void passesInContext() {
        driving = true;
        try {
            int before;
            do {
                before = changes;
                if (stopped) {
                    rethrowAbandoned();
                    return;
                }
                switch (status) {
                    case RUNNING -> {
                        if (straight) {
                            forwardStraight();
                        } else {
                            advanceForward();
                        }
                    }
                    case COMPENSATING -> {
                        if (straight) {
                            compensateStraight();
                        } else {
                            advanceCompensation();
                        }
                    }
                    default -> finish();
                }
            } while (changes != before);
            if (!flush()) { // nothing staged outlives a pass
                rethrowAbandoned();
            }
        } catch (Error e) {
            abandon(e);
            throw e;
        } finally {
            driving = false;
            now = null;
        }
    }

    /**
     * An {@link Error} (not an Exception) thrown by an action, compensation, reply handler or the store while
     * this run was driven: it is not retried. The run stops as if the process died there (nothing staged is
     * written, the result completes exceptionally with the Error, the run is no longer registered) and the
     * caller rethrows it. The store keeps what it had, a step whose outcome was not recorded, so recover()
     * resumes the saga as after a crash. A test's {@link SimulatedProcessCrash} is logged at DEBUG only.
     */
    private void abandon(Error error) {
        if (stopped) { // already stopped (by drive(), or a listener's call): nothing left to undo
            return;
        }
        if (error instanceof SimulatedProcessCrash) {
            log.debug("saga {}: {} thrown; the saga stops here and resumes on recover()", sagaId, error.toString());
        } else {
            log.error("saga {}: {} thrown; the saga stops here and resumes on recover()", sagaId, error.toString());
        }
        stopHere(error);
    }

    /**
     * Records an outcome that arrives outside {@link #drive()} (an asynchronous completion, a reply, a timeout, a
     * failed send, an operator's cancel, retry, skip or resolve) and drives on. An Error from the store or a listener
     * while recording it stops the run as it would in {@code drive()} ({@link #abandon}) and is rethrown; when the
     * outcome arrived inside a drive pass (a stage complete when returned), the pass rethrows it too.
     */
    private void recordAndDrive(Runnable outcome) {
        String[] previous = enterLogContext(); // the outcome's log lines and listeners too, not only the drive's
        try {
            try {
                outcome.run();
            } catch (Error e) {
                abandon(e);
                if (driving) { // the lock is re-entrant: this is the driving thread, in the stage's dependent
                    uncommon().abandonedWhileDriving = e;
                }
                throw e;
            }
            // An operator call refused here, its run put back (restoreBeforeTheCall): the drive may meet another call (a
            // listener's), which takes only its own refusal; this one stays the caller's to throw or fail its stage with.
            StreamSagaException refusal = takeRefusedCall();
            drive();
            if (refusal != null) {
                uncommon.refusedCall = refusal;
            }
        } finally {
            leaveLogContext(previous);
        }
    }

    /** In a pass that found the run stopped: rethrows the Error that stopped it inside the pass, if one did. */
    private void rethrowAbandoned() {
        Error error = uncommon == null ? null : uncommon.abandonedWhileDriving;
        if (error != null) {
            uncommon.abandonedWhileDriving = null;
            throw error;
        }
    }

    /** An Error after the start was stored, before the run was driven (publishing its event, a listener). */
    synchronized void abandonStarted(Error error) {
        abandon(error);
    }

    /**
     * Stores the saga's start now (before listeners hear of it); false when that failed and the run stopped. An
     * Error from the store stops the run as in {@link #drive()} ({@link #abandon}) and is rethrown.
     */
    synchronized boolean storeStart() {
        String[] previous = enterLogContext(); // a refusal's line is about this saga, though outside a drive
        try {
            return flush();
        } catch (Error e) {
            abandon(e);
            throw e;
        } finally {
            leaveLogContext(previous);
        }
    }

    // ---------------------------------------------------------------- forward

    private void advanceForward() {
        int groupCount = shared.groupStart.length - 1;
        int g = forwardFrom;
        while (g < groupCount && allSucceeded(g)) {
            g++;
        }
        forwardFrom = g;
        if (g == groupCount) {
            if (writeStatus(TransitionType.SAGA_COMPLETED, null, 0, null, SagaStatus.COMPLETED) && observedAndFlushed()) {
                orchestrator.onCompleted(snapshot());
                now = null; // the listeners ran: the application's time
            }
            return;
        }
        boolean busy = false;
        boolean failed = false;
        SagaStep<D> failedStep = null;
        // Once a member failed for good no member starts again: one waiting for its retry is settled by compensation.
        boolean memberFailed = false;
        for (int i = shared.groupStart[g]; i < shared.groupStart[g + 1]; i++) {
            StepStatus memberStatus = stepStates.get(i).status();
            memberFailed |= memberStatus == StepStatus.FAILED || memberStatus == StepStatus.UNCERTAIN;
        }
        for (int i = shared.groupStart[g]; i < shared.groupStart[g + 1]; i++) {
            SagaStep<D> step = steps[i];
            StepState state = stepStates.get(i);
            switch (state.status()) {
                case SUCCEEDED -> {
                }
                case FAILED, UNCERTAIN -> {
                    failed = true;
                    failedStep = step;
                }
                case RUNNING -> {
                    if (!inFlight[i]) {
                        // Recovered: the outcome of the last attempt was never recorded, so run it again.
                        startAction(step);
                        return;
                    }
                    busy = true;
                }
                case WAITING -> {
                    busy = true;
                    if (attached.length == 0 || !attached[i]) {
                        resumeWaiting(step, state);
                        return;
                    }
                }
                case RETRY_SCHEDULED -> {
                    if (memberFailed) {
                        continue;
                    }
                    busy = true;
                    if (due(state)) {
                        startAction(step);
                        return;
                    }
                    armRetry(step, state);
                }
                case PENDING -> {
                    if (!failed) {
                        startAction(step);
                        return;
                    }
                }
                default -> throw new IllegalStateException("step " + step.name() + " is " + state.status()
                        + " in a running saga " + sagaId);
            }
        }
        if (!busy && failed) {
            if (failedStep.role() == StepRole.RETRIABLE) {
                needsAttention(failure);
                return;
            }
            if (writeStatus(TransitionType.SAGA_COMPENSATING, null, 0, failure, SagaStatus.COMPENSATING)
                    && observedAndFlushed()) {
                orchestrator.onCompensationStarting(snapshot());
                now = null; // the listeners ran: the application's time
            }
        }
    }

    /**
     * The forward path of a straight definition (every group one local synchronous step; no listeners or
     * lifecycle topic, a store that takes batches) while every step so far succeeded at its first attempt: the
     * same transitions, writes and calls as {@link #advanceForward} and {@link #startAction}, without the
     * scan of the step states or the general staging. Anything else (a failure, a retry, a cancellation, a
     * recovered run) is left to the general path, which goes on from the same state.
     */
    private void forwardStraight() {
        for (int i = forwardFrom; i < steps.length; i++) {
            if (stepStates != shared.beforeStart(i)) {
                advanceForward();
                return;
            }
            if (stopsForClose()) {
                return;
            }
            SagaStep<D> step = steps[i];
            cancelTimer(i);
            if (!stageStraight(shared.runningList(i), TransitionType.STEP_STARTED, step.name()) || !flush()) {
                return;
            }
            D result = callAction(step, context(step, 1));
            if (result == FAILED) {
                if (status == SagaStatus.RUNNING && stepStates == shared.failedList(i) && step.role() != StepRole.RETRIABLE) {
                    // Failed for good at its first attempt, nothing else running: advanceForward would compensate.
                    writeStatus(TransitionType.SAGA_COMPENSATING, null, 0, failure, SagaStatus.COMPENSATING);
                }
                return;
            }
            if (status != SagaStatus.RUNNING) { // the action cancelled its own saga
                onActionSuccess(step, result);
                return;
            }
            D previous = data;
            try {
                data = result == null ? data : definition.merge(step.group()).apply(data, result);
            } catch (RuntimeException e) {
                // A lone member's group's own merge threw (the default cannot): uncertain, as in onActionSuccess.
                onActionFailure(step, e, true, false);
                return;
            }
            if (!stageStraight(shared.succeededList(i), TransitionType.STEP_SUCCEEDED, step.name())) {
                data = previous;
                return;
            }
            forwardFrom = i + 1;
        }
        advanceForward(); // every step succeeded: the general path completes the saga
    }

    /**
     * Compensation of a straight definition after step k (where the forward path stopped) failed at its
     * first attempt: the steps before it compensated last first, as {@link #advanceCompensation} and
     * {@link #startCompensation} do, without their scans. Off that path (a compensation that fails, a
     * cancellation, a recovered run) the general path goes on.
     */
    private void compensateStraight() {
        int k = forwardFrom;
        if (k >= steps.length) {
            advanceCompensation();
            return;
        }
        List<StepState> done = shared.failedList(k);
        for (int j = k - 1; j >= 0; j--) {
            SagaStep<D> step = steps[j];
            if (!step.hasCompensation()) {
                continue;
            }
            if (stepStates == done) {
                if (stopsForClose()) {
                    return;
                }
                cancelTimer(j);
                if (!stageStraight(shared.compensatingList(k, j), TransitionType.COMPENSATION_STARTED, step.name())
                        || !flush()) {
                    return;
                }
                if (!callCompensation(step, 1)) {
                    return;
                }
                if (!stageStraight(shared.compensatedList(k, j), TransitionType.COMPENSATION_SUCCEEDED, step.name())) {
                    return;
                }
            } else if (stepStates != shared.compensatedList(k, j)) {
                advanceCompensation();
                return;
            }
            done = shared.compensatedList(k, j);
        }
        if (stepStates == done) {
            // Steps before k compensated, k failed, the rest never started: nothing left to undo or settle.
            writeStatus(TransitionType.SAGA_COMPENSATED, null, 0, null, SagaStatus.COMPENSATED);
        } else {
            advanceCompensation();
        }
    }

    private boolean allSucceeded(int group) {
        for (int i = shared.groupStart[group]; i < shared.groupStart[group + 1]; i++) {
            if (stepStates.get(i).status() != StepStatus.SUCCEEDED) {
                return false;
            }
        }
        return true;
    }

    private boolean due(StepState state) {
        return state.dueAt() == null || !state.dueAt().isAfter(now());
    }

    private void startAction(SagaStep<D> step) {
        if (stopsForClose()) {
            return;
        }
        int i = step.index();
        StepState state = stepStates.get(i);
        int attempt = state.attempts() + 1;
        cancelTimer(i);
        if (step.isRemote()) {
            // The command is built before the write so a store with an outbox can write both in one transaction.
            Message command = null;
            Exception commandError = null;
            String[] previous = enterStep(step);
            try {
                command = command(step, attempt, orchestrator.transactionalMessages());
            } catch (Exception e) {
                commandError = e;
            } finally {
                leaveLogContext(previous);
            }
            // The deadline counts from the command built (its factory is the application's time, as is what ran before it
            // on this thread since the cached reading), up to the write that stores it with the attempt's start.
            Instant started = startOf(step.timeout());
            Instant deadline = started == null ? null : started.plus(step.timeout());
            boolean stored = command != null && orchestrator.transactionalMessages();
            if (!stage(i, state.nextAttempt(StepStatus.WAITING, deadline), status, failure, compensationFailure,
                    TransitionType.STEP_WAITING, step.name(), attempt, null, stored ? command : null) || !flush()) {
                return;
            }
            attached()[i] = true;
            if (commandError != null) {
                onActionFailure(step, commandError, false);
                return;
            }
            if (started != null) {
                now = null; // the timer falls due at the stored deadline, the write's time taken, as after a recovery
            }
            if ((started == null || armTimeout(step, attempt, left(step.timeout(), started))) && !stored) {
                publishCommand(step, attempt, command);
            }
            return;
        }
        if (!writeStep(i, shared.nextAttemptRunning(i, state), TransitionType.STEP_STARTED, attempt, null) || !flush()) {
            return;
        }
        StepContext context = context(step, attempt);
        if (step.action() != null && shared.groupStart[step.group() + 1] - shared.groupStart[step.group()] == 1) {
            D result = callAction(step, context);
            if (result != FAILED) {
                onActionSuccess(step, result);
            }
            return;
        }
        inFlight[i] = true;
        // The timeout counts from here: the work may run before the stage is returned (a parallel executor running
        // it on this thread, an asynchronous action doing it before it returns its stage).
        Instant started = startOf(step.timeout());
        CompletionStage<D> stage;
        String[] previous = enterStep(step);
        try {
            openInvocation(i, before(SagaInterceptor.Kind.ACTION, context));
            stage = step.action() != null ? runInParallel(step, context) : step.asyncAction().execute(data, context);
        } catch (Exception e) {
            now = null;
            Exception cause = rejectedCause(e);
            endInvocation(i, cause);
            inFlight[i] = false;
            onActionFailure(step, cause, false);
            return;
        } finally {
            leaveLogContext(previous);
        }
        now = null;
        if (stage == null) {
            stage = CompletableFuture.failedFuture(new IllegalStateException("the asynchronous action of step '"
                    + step.name() + "' returned null instead of a stage"));
        }
        if (step.timeout() == null || arm(i, left(step.timeout(), started), () -> onTimeout(step, attempt, step.timeout()))) {
            stage.whenComplete((result, error) -> onAsyncCompletion(step, attempt, started, result, error));
        }
    }

    /**
     * The start of an attempt bounded by {@code timeout}, which counts from it: the clock read afresh, not the reading
     * cached for the burst ({@link #now}), which may be older than the work before the attempt that is not its own (the
     * write of its start, a metrics recorder hearing of the saga's, whatever application code ran since without a
     * reset). Null, and no clock read, without a timeout: nothing counts from it.
     */
    private Instant startOf(Duration timeout) {
        if (timeout == null) {
            return null;
        }
        now = null;
        return now();
    }

    /** What is left of {@code timeout} counted from {@code started}: nothing (due at once) once it has passed. */
    private Duration left(Duration timeout, Instant started) {
        Duration left = timeout.minus(Duration.between(started, now()));
        return left.isNegative() ? Duration.ZERO : left;
    }

    /**
     * Whether {@code deadline} (null: none, never) has come, the clock read afresh by the caller: at the deadline itself
     * too, when the timer armed for it is due and fails the attempt if it runs first, so the order does not decide.
     */
    private boolean isPast(Instant deadline) {
        return deadline != null && !now().isBefore(deadline);
    }

    /**
     * Whether work started at {@code started} and bounded by {@code timeout} (or null: none) ends at or after its
     * deadline: at the deadline itself too, as a remote reply ({@link #isPast}), the timer due then failing it otherwise.
     */
    private boolean overran(Duration timeout, Instant started) {
        return timeout != null && isPast(started.plus(timeout));
    }

    /**
     * A synchronous member of a parallel group runs on the parallel executor, so that the group's members
     * run concurrently; its outcome then arrives like an asynchronous action's (and its timeout applies).
     */
    private CompletionStage<D> runInParallel(SagaStep<D> step, StepContext context) {
        D input = data;
        return onParallelExecutor(step, () -> step.action().execute(input, context));
    }

    /**
     * Runs {@code task} (of {@code step}) on the orchestrator's parallel executor; its result or failure completes the
     * stage. The executor's thread has the step's keys in its MDC meanwhile, its own put back before the stage
     * completes (what depends on it may run on that thread).
     */
    private <T> CompletionStage<T> onParallelExecutor(SagaStep<D> step, Callable<T> task) {
        CompletableFuture<T> outcome = new CompletableFuture<>();
        orchestrator.parallelExecutor().execute(() -> {
            String[] previous = enterStep(step);
            T result;
            try {
                result = task.call();
            } catch (Throwable e) {
                leaveLogContext(previous);
                outcome.completeExceptionally(e);
                return;
            }
            leaveLogContext(previous);
            outcome.complete(result);
        });
        return outcome;
    }

    /** The failure a stage completed with, without the {@link CompletionException} wrapper. */
    private static Throwable unwrapped(Throwable error) {
        return error instanceof CompletionException ce && ce.getCause() != null ? ce.getCause() : error;
    }

    /**
     * The outcome of an asynchronous action or a parallel member's, the attempt started at {@code started} (null
     * without a timeout: see {@link #startOf}). One that comes at or after the step's deadline (its timer not run yet: the
     * work ran while the engine started it, on a parallel executor that runs it on the calling thread, or a
     * scheduler's thread late) is the timeout's, as the timer's would have been on time.
     */
    private synchronized void onAsyncCompletion(SagaStep<D> step, int attempt, Instant started, D result, Throwable error) {
        now = null;
        int i = step.index();
        StepState state = stepStates.get(i);
        if (stopped || state.status() != StepStatus.RUNNING || state.attempts() != attempt || !inFlight[i]) {
            if (log.isDebugEnabled()) { // no arguments array, nor a boxed attempt, for a line not written
                debugOutsideADrive("saga {}: ignoring late completion of step {} attempt {}", sagaId, step.name(),
                        attempt);
            }
            return;
        }
        if (overran(step.timeout(), started)) {
            inFlight[i] = false;
            SagaTimeoutException timedOut = SagaException.timeout(sagaId, step.name(), step.timeout());
            recordAndDrive(() -> {
                cancelTimer(i);
                endInvocation(i, timedOut); // its outcome came too late and is ignored
                onActionFailure(step, timedOut, true);
            });
            return;
        }
        recordAndDrive(() -> {
            Throwable cause = unwrapped(error);
            endInvocation(i, cause);
            inFlight[i] = false;
            cancelTimer(i);
            if (cause == null) {
                onActionSuccess(step, result);
            } else {
                onActionFailure(step, cause, false);
            }
        });
    }

    /** What {@link #callAction} returns when the action threw: an action may return null, so a sentinel. */
    private static final Object FAILED = new Object();

    /**
     * Calls a synchronous action on this thread, the interceptors around it. Returns its result, or
     * {@link #FAILED} (compared by identity) when it threw, the failure then handled ({@link #onActionFailure}).
     */
    private D callAction(SagaStep<D> step, StepContext context) {
        // Off, the common path's call is invokeAction alone, as small as without the option (it stays inlined).
        return orchestrator.logContext() ? callActionWithKeys(step, context) : invokeAction(step, context);
    }

    /** {@link #callAction} with the step's keys in the MDC, its failure's handling too (its log line, the listeners). */
    private D callActionWithKeys(SagaStep<D> step, StepContext context) {
        String[] previous = enterStep(step);
        try {
            return invokeAction(step, context);
        } finally {
            leaveLogContext(previous);
        }
    }

    @SuppressWarnings("unchecked")
    private D invokeAction(SagaStep<D> step, StepContext context) {
        int i = step.index();
        inFlight[i] = true;
        D result;
        SagaInterceptor.Invocation invocation = null;
        try {
            invocation = before(SagaInterceptor.Kind.ACTION, context);
            result = step.action().execute(data, context);
        } catch (Exception e) {
            now = null;
            Exception cause = ended(invocation, e);
            inFlight[i] = false;
            onActionFailure(step, cause, false);
            return (D) FAILED;
        } catch (Error e) {
            after(invocation, e);
            throw e;
        }
        now = null;
        after(invocation, null);
        inFlight[i] = false;
        return result;
    }

    /**
     * Calls the step's compensation on this thread, the interceptors around it. False when it threw, the
     * failure then handled ({@link #onCompensationFailure}).
     */
    private boolean callCompensation(SagaStep<D> step, int attempt) {
        return orchestrator.logContext() ? callCompensationWithKeys(step, attempt) : invokeCompensation(step, attempt);
    }

    /**
     * {@link #callCompensation} with the step's keys in the MDC, its failure's handling too (the engine's WARN or ERROR,
     * the listeners).
     */
    private boolean callCompensationWithKeys(SagaStep<D> step, int attempt) {
        String[] previous = enterStep(step);
        try {
            return invokeCompensation(step, attempt);
        } finally {
            leaveLogContext(previous);
        }
    }

    private boolean invokeCompensation(SagaStep<D> step, int attempt) {
        int i = step.index();
        StepContext context = context(step, attempt);
        inFlight[i] = true;
        SagaInterceptor.Invocation invocation = null;
        try {
            invocation = before(SagaInterceptor.Kind.COMPENSATION, context);
            step.compensation().compensate(data, context);
        } catch (Exception e) {
            now = null;
            Exception cause = ended(invocation, e);
            inFlight[i] = false;
            onCompensationFailure(step, cause);
            return false;
        } catch (Error e) {
            after(invocation, e);
            throw e;
        }
        now = null;
        after(invocation, null);
        inFlight[i] = false;
        return true;
    }

    private void onActionSuccess(SagaStep<D> step, D result) {
        D merged;
        try {
            merged = result == null ? data : definition.merge(step.group()).apply(data, result);
        } catch (RuntimeException e) {
            now = null; // the merge ran: the application's time
            // The group's merge threw: the action took effect, its result is unusable. Not retried: an idempotent
            // action returns the same result again, and the uncertainty of a retried attempt would live only in this
            // run (a timed-out one's is in the history), so a retry failing after a restart would leave it undone.
            onActionFailure(step, e, true, false);
            return;
        }
        if (result != null) {
            // The merge ran: the application's time (the clock may have been read before it, see overran), which the
            // next attempt started in this pass must not count against its timeout.
            now = null;
        }
        D previous = data;
        data = merged;
        int i = step.index();
        if (!writeStep(i, shared.succeeded(i, stepStates.get(i)), TransitionType.STEP_SUCCEEDED,
                stepStates.get(i).attempts(), null)) {
            if (stopped) { // not when the store refused the write and a listener's call went on from the saga as stored
                data = previous; // (refusedAfterTheStart): the data is that call's, a retried attempt's result, say
            }
            return;
        }
        if (observedAndFlushed()) {
            notifyStep(TransitionType.STEP_SUCCEEDED, step, null);
        }
    }

    /**
     * Tells the listeners of {@code step}'s outcome ({@code outcome}: succeeded, failed for good with {@code failure},
     * or compensated) with the step's keys in the MDC when the orchestrator asks for them, wherever the outcome is
     * handled (after the call, in a drive, a reply's handling). Only with listeners: never on the straight path.
     */
    private void notifyStep(TransitionType outcome, SagaStep<D> step, SagaFailure failure) {
        String[] previous = enterStep(step);
        try {
            switch (outcome) {
                case STEP_SUCCEEDED -> orchestrator.onStepCompleted(snapshot(), step.name());
                case COMPENSATION_SUCCEEDED -> orchestrator.onStepCompensated(snapshot(), step.name());
                default -> orchestrator.onStepFailed(snapshot(), step.name(), failure);
            }
        } finally {
            leaveLogContext(previous);
        }
        now = null; // the listeners ran: the application's time
    }

    /** A failed attempt: retried per the step's policy, else the step fails for good. */
    private void onActionFailure(SagaStep<D> step, Throwable error, boolean uncertain) {
        onActionFailure(step, error, uncertain, true);
    }

    /** {@code mayRetry} false: the step fails for good whatever its policy. */
    private void onActionFailure(SagaStep<D> step, Throwable error, boolean uncertain, boolean mayRetry) {
        int i = step.index();
        StepState state = stepStates.get(i);
        RetryPolicy policy = step.retryPolicy();
        // The error is the transition's detail, described only when a store or a log reads it.
        if (mayRetry && status == SagaStatus.RUNNING && policy.shouldRetry(error, state.attempts())) {
            if (uncertain) {
                if (uncertainAttempts() == NO_FLAGS) {
                    uncertainAttempt = new boolean[steps.length];
                }
                uncertainAttempt[i] = true;
            }
            Duration delay = orchestrator.retryDelay(policy, state.attempts() + 1);
            if (log.isDebugEnabled()) {
                log.debug("saga {}: step {} attempt {} failed, retrying in {}: {}", sagaId, step.name(),
                        state.attempts(), delay, PendingTransitions.describe(error));
            }
            writeStep(i, state.with(StepStatus.RETRY_SCHEDULED, now().plus(delay)),
                    error instanceof SagaTimeoutException ? TransitionType.STEP_TIMED_OUT : TransitionType.STEP_RETRY_SCHEDULED,
                    state.attempts(), error);
            return;
        }
        SagaFailure stepFailure = SagaFailure.of(step.name(), error);
        // An earlier attempt that timed out (not interrupted) or went to a participant may have taken effect too.
        StepState failed = uncertain || state.attempts() > 1 && earlierAttemptsMayHaveTakenEffect(i)
                ? state.with(StepStatus.UNCERTAIN) : shared.failed(i, state);
        if (exception == null && !stopped) {
            // Before it is staged: a store that keeps no history then keeps nothing aside for it (record), the result
            // carrying it already (a failing saga's only error on the benchmark's path).
            exception = error;
        }
        if (stage(i, failed, status, failure == null ? stepFailure : failure, compensationFailure,
                error instanceof SagaTimeoutException ? TransitionType.STEP_TIMED_OUT : TransitionType.STEP_FAILED,
                step.name(), state.attempts(), error, null)) {
            // debug, not info: a failed step is an expected business outcome, reported to listeners and metrics
            if (log.isDebugEnabled()) {
                log.debug("saga {}: step {} failed: {}", sagaId, step.name(), PendingTransitions.describe(error));
            }
            if (observedAndFlushed()) {
                notifyStep(TransitionType.STEP_FAILED, step, stepFailure);
            }
        }
    }

    // ---------------------------------------------------------------- remote steps

    /** The remote step's command message for {@code attempt} (see {@link #commandMessage}). */
    private Message command(SagaStep<D> step, int attempt, boolean encoded) throws Exception {
        return commandMessage(step, context(step, attempt), false, encoded);
    }

    /**
     * A command message of the step: its remote action's, or ({@code compensation}) its remote compensation's.
     * The id is deterministic per attempt, so a command re-sent after a crash is the same message for
     * idempotent consumers. A compensation's id and idempotency key carry {@code /compensation}, so that a
     * participant that dedupes commands by key never takes it for a repeat of the action's command, and its
     * {@link SagaMessages#PHASE} header routes the reply to the compensation. {@code encoded}: the payload as
     * bytes, for a store to write.
     */
    private Message commandMessage(SagaStep<D> step, StepContext context, boolean compensation, boolean encoded)
            throws Exception {
        String topic;
        Class<?> declared;
        Object payload;
        if (compensation) {
            SagaStep.RemoteCompensation<D> remote = step.remoteCompensation().orElseThrow();
            topic = remote.commandTopic();
            declared = remote.commandType();
            payload = remote.command().command(data, context);
        } else {
            SagaStep.Remote<D> remote = step.remote().orElseThrow();
            topic = remote.commandTopic();
            declared = remote.commandType();
            payload = remote.command().command(data, context);
        }
        // The class the orchestrator checked is not the one sent: the registry gives a type id to a class, not to its
        // subclasses, so a subclass is refused here too rather than met as an unregistered class below.
        if (declared != null && (payload == null || payload.getClass() != declared)) {
            throw new ConfigurationException("saga " + StreamSagaException.quote(definition.name()) + ": "
                    + (compensation ? "the compensation command" : "the command") + " of step "
                    + StreamSagaException.quote(step.name()) + " is declared of class " + declared.getName()
                    + " but its factory built " + (payload == null ? "null" : "a " + payload.getClass().getName()));
        }
        var typeId = orchestrator.bus().codec().types().idOf(payload.getClass());
        String phase = compensation ? "/" + SagaMessages.COMPENSATION : "";
        Message.Builder builder = Message.builder(topic);
        if (compensation) {
            builder.header(SagaMessages.PHASE, SagaMessages.COMPENSATION);
        }
        return (encoded ? orchestrator.inheritingHandled(builder) : builder) // for the store: see inheritingHandled
                // Not <saga id>/<step>/<attempt> alone: a saga started later under this id would repeat it (an outbox
                // refuses a message id it holds; an inbox skips it). The idempotency key stays <saga id>/<step>.
                .id(SagaMessages.commandId(sagaId, createdAt, step.name(), compensation, context.attempt()))
                .key(sagaId)
                .type(typeId.type())
                .version(typeId.version())
                .payload(encoded ? orchestrator.bus().codec().encode(payload) : payload)
                .header(MessageHeaders.SAGA_ID, sagaId)
                .header(SagaMessages.STEP, step.name())
                .header(SagaMessages.ATTEMPT, Integer.toString(context.attempt()))
                .header(SagaMessages.REPLY_TOPIC, orchestrator.config().replyTopic())
                .header(SagaMessages.IDEMPOTENCY_KEY, context.idempotencyKey() + phase)
                .timestamp(now())
                .build();
    }

    /** Re-sends the command of a waiting step (after recovery). */
    private void sendCommand(SagaStep<D> step, int attempt) {
        Message command;
        try {
            command = command(step, attempt, false);
        } catch (Exception e) {
            cancelTimer(step.index());
            onActionFailure(step, e, false);
            return;
        }
        publishCommand(step, attempt, command);
    }

    private void publishCommand(SagaStep<D> step, int attempt, Message command) {
        DefaultEventBus.publishOutsideDelivery(orchestrator.bus(), command).whenComplete((position, error) -> {
            if (error != null) {
                onSendFailure(step, attempt, error);
            }
        });
    }

    private synchronized void onSendFailure(SagaStep<D> step, int attempt, Throwable error) {
        now = null;
        StepState state = stepStates.get(step.index());
        if (stopped || state.status() != StepStatus.WAITING || state.attempts() != attempt) {
            return;
        }
        recordAndDrive(() -> {
            cancelTimer(step.index());
            onActionFailure(step, unwrapped(error), false);
        });
    }

    /** After recovery: re-send the command (idempotent by its deterministic id) and re-arm the timeout. */
    private void resumeWaiting(SagaStep<D> step, StepState state) {
        int i = step.index();
        attached()[i] = true;
        if (state.dueAt() != null) {
            Duration left = Duration.between(now(), state.dueAt());
            if (!armTimeout(step, state.attempts(), left.isNegative() ? Duration.ZERO : left)) {
                return;
            }
        }
        if (!orchestrator.transactionalMessages()) {
            sendCommand(step, state.attempts());
        } // else the command was stored with the STEP_WAITING transition, and the store's relay delivers it
    }

    /**
     * A reply for {@code step}: completes the step if it still waits, unless the reply answers an earlier attempt (see
     * {@link #ofAnEarlierAttempt}) or comes at or after the attempt's stored deadline (its timeout's outcome then). Returns the saga's stored version when the run took the reply (the first write
     * after it holds its outcome: see {@link #refusedTwiceReason}), -1 when it ignored it.
     */
    synchronized long onReply(SagaStep<D> step, Message reply) {
        now = null;
        int i = step.index();
        StepState state = stepStates.get(i);
        if (stopped || state.status() != StepStatus.WAITING) {
            log.debug("saga {}: ignoring reply {} for step {} in status {}", sagaId, reply.id(), step.name(),
                    state.status());
            return -1;
        }
        if (ofAnEarlierAttempt(reply, state.attempts())) {
            log.debug("saga {}: ignoring reply {} of a superseded attempt of step {}, which waits for attempt {}", sagaId,
                    reply.id(), step.name(), state.attempts());
            return -1;
        }
        SagaStep.Remote<D> remote = step.remote().orElseThrow();
        // Decoded before the reply is taken: one that cannot be is refused (dead-lettered) and the step waits on, its
        // timer armed. A late reply is the timeout's outcome, taken unread.
        boolean late = isPast(state.dueAt());
        Object decoded = null;
        Exception undecoded = null;
        if (!late) {
            try {
                decoded = orchestrator.bus().codec().decode(reply, remote.replyType());
            } catch (DecodingException e) {
                throw undecodable(step, reply, "", e);
            } catch (RuntimeException e) { // an application codec's own failure: the handling's, as the handler's
                undecoded = e;
            }
        }
        long takenAt = storedVersion;
        attached()[i] = true;
        cancelTimer(i);
        if (late) {
            // Its timer not run yet (a scheduler running late, a clock moved past the deadline): the timeout's outcome, as
            // the timer's is when it runs first, so that the order of the two does not decide. The reply is taken unread.
            log.debug("saga {}: reply {} of step {} attempt {} came after the attempt's deadline {}: it timed out", sagaId,
                    reply.id(), step.name(), state.attempts(), state.dueAt());
            SagaTimeoutException timedOut = SagaException.timeout(sagaId, step.name(), step.timeout());
            recordAndDrive(() -> onActionFailure(step, timedOut, true));
            return takenAt;
        }
        StepContext context = context(step, state.attempts());
        D result;
        SagaInterceptor.Invocation invocation = null;
        String[] previous = enterStep(step); // the drive after it puts its own (no step), then this back
        try {
            try { // the invocation is the reply's handling
                invocation = before(SagaInterceptor.Kind.REPLY, context);
                if (undecoded != null) {
                    throw undecoded;
                }
                result = remote.onReply().onReply(data, decoded);
            } catch (Exception e) {
                now = null;
                Exception cause = endedHandling(invocation, e);
                // The participant may have acted before its reply was rejected: compensate it if it fails for good.
                recordAndDrive(() -> onActionFailure(step, cause, true));
                return takenAt;
            } catch (Error e) {
                endedHandling(invocation, e);
                throw e;
            }
            now = null;
            endedHandling(invocation, null);
            recordAndDrive(() -> onActionSuccess(step, result));
        } finally {
            leaveLogContext(previous);
        }
        return takenAt;
    }

    /**
     * Ends the invocation of a reply's handling, which runs outside {@link #drive()}: when {@code error} is an Error,
     * or an {@code after()} throws one (the process dying, or a ThreadDeath: see {@link #after(SagaInterceptor,
     * SagaInterceptor.Invocation, Throwable)}), the run stops there as in a drive pass ({@link #abandon}) and it is
     * thrown. Returns the failure of a handling that threw an Exception ({@link #ended}).
     */
    private Exception endedHandling(SagaInterceptor.Invocation invocation, Throwable error) {
        try {
            if (error instanceof Exception e) {
                return ended(invocation, e);
            }
            after(invocation, error);
        } catch (Error e) {
            abandon(e);
            throw e;
        }
        if (error instanceof Error e) {
            abandon(e);
            throw e;
        }
        return null;
    }

    /** Arms the attempt's timeout, if the step has one; false when the run stopped instead ({@link #arm}). */
    private boolean armTimeout(SagaStep<D> step, int attempt, Duration timeout) {
        return timeout == null || arm(step.index(), timeout, () -> onTimeout(step, attempt, timeout));
    }

    private synchronized void onTimeout(SagaStep<D> step, int attempt, Duration timeout) {
        now = null;
        int i = step.index();
        if (stopped || orchestrator.isClosed()) {
            return;
        }
        StepState state = stepStates.get(i);
        boolean waiting = state.status() == StepStatus.WAITING
                || (state.status() == StepStatus.RUNNING && inFlight[i]);
        if (!waiting || state.attempts() != attempt) {
            return;
        }
        inFlight[i] = false;
        SagaTimeoutException timedOut = SagaException.timeout(sagaId, step.name(), step.timeout());
        recordAndDrive(() -> {
            endInvocation(i, timedOut); // an asynchronous action's: its late outcome is ignored
            onActionFailure(step, timedOut, true);
        });
    }

    private void armRetry(SagaStep<D> step, StepState state) {
        int i = step.index();
        if (timers()[i] != null || !flush()) {
            return;
        }
        arm(i, Duration.between(now(), state.dueAt()), this::onRetryDue);
    }

    private synchronized void onRetryDue() {
        now = null;
        if (!stopped && !orchestrator.isClosed()) {
            drive();
        }
    }

    // ---------------------------------------------------------------- compensation

    private void advanceCompensation() {
        // Settle forward work first: an action in flight records its outcome before anything is undone.
        for (int i = 0; i < steps.length; i++) {
            StepStatus stepStatus = stepStates.get(i).status();
            if (inFlight[i] && stepStatus == StepStatus.RUNNING) {
                return;
            }
        }
        if (settleForwardStates()) {
            return;
        }
        int g = shared.groupStart.length - 2;
        while (g >= 0 && !needsCompensation(g)) {
            g--;
        }
        if (g < 0) {
            if (writeStatus(TransitionType.SAGA_COMPENSATED, null, 0, null, SagaStatus.COMPENSATED) && observedAndFlushed()) {
                orchestrator.onCompensated(snapshot());
                now = null; // the listeners ran: the application's time
            }
            return;
        }
        boolean busy = false;
        boolean failed = false;
        for (int i = shared.groupStart[g]; i < shared.groupStart[g + 1]; i++) {
            SagaStep<D> step = steps[i];
            StepState state = stepStates.get(i);
            if (!step.hasCompensation()) {
                continue;
            }
            switch (state.status()) {
                case SUCCEEDED, UNCERTAIN -> {
                    startCompensation(step);
                    return;
                }
                case COMPENSATING -> {
                    if (!inFlight[i]) {
                        startCompensation(step); // recovered: its outcome was never recorded
                        return;
                    }
                    busy = true;
                }
                case COMPENSATION_RETRY_SCHEDULED -> {
                    busy = true;
                    if (due(state)) {
                        startCompensation(step);
                        return;
                    }
                    armRetry(step, state);
                }
                case COMPENSATION_FAILED -> failed = true;
                default -> {
                }
            }
        }
        if (!busy && failed) {
            needsAttention(compensationFailure);
        }
    }

    /**
     * A compensating saga may hold forward states from before the failure, a cancellation or a crash:
     * a remote step still waiting or an action whose outcome is unknown may have taken effect (uncertain,
     * compensated); a retry that never ran took none (failed), unless an earlier attempt may have: a remote
     * step's (timed out or its reply rejected) or one that timed out (uncertain). Returns whether it wrote a
     * transition.
     */
    private boolean settleForwardStates() {
        for (int i = 0; i < steps.length; i++) {
            StepState state = stepStates.get(i);
            StepStatus settled = switch (state.status()) {
                case RUNNING, WAITING -> StepStatus.UNCERTAIN;
                case RETRY_SCHEDULED -> earlierAttemptsMayHaveTakenEffect(i) ? StepStatus.UNCERTAIN : StepStatus.FAILED;
                default -> null;
            };
            if (settled != null) {
                cancelTimer(i);
                return writeStep(i, state.with(settled), settled == StepStatus.UNCERTAIN
                        ? TransitionType.STEP_TIMED_OUT : TransitionType.STEP_FAILED, state.attempts(), "saga is compensating");
            }
        }
        return false;
    }

    /**
     * Whether a failed attempt of step {@code i} may have taken effect: a remote step's (its wait timed out or
     * its reply was rejected: the participant may have acted) or one that timed out in this process (an
     * asynchronous action, a parallel member's: it is not interrupted).
     */
    private boolean earlierAttemptsMayHaveTakenEffect(int i) {
        return steps[i].isRemote() || (uncertainAttempts().length > 0 && uncertainAttempt[i]);
    }

    /**
     * {@link #uncertainAttempt}; in a run read from the store, first derived from its history: a step with a
     * {@code STEP_TIMED_OUT} transition had an attempt time out (a store that keeps no history cannot say).
     */
    private boolean[] uncertainAttempts() {
        if (uncertainAttempt == null) {
            boolean[] flags = NO_FLAGS;
            for (SagaTransition transition : orchestrator.store().history(sagaId)) {
                if (transition.type() == TransitionType.STEP_TIMED_OUT) {
                    for (int i = 0; i < steps.length; i++) {
                        if (steps[i].name().equals(transition.step())) {
                            if (flags == NO_FLAGS) {
                                flags = new boolean[steps.length];
                            }
                            flags[i] = true;
                        }
                    }
                }
            }
            uncertainAttempt = flags;
        }
        return uncertainAttempt;
    }

    private boolean needsCompensation(int group) {
        for (int i = shared.groupStart[group]; i < shared.groupStart[group + 1]; i++) {
            if (steps[i].hasCompensation() && stepStates.get(i).status().needsCompensation()) {
                return true;
            }
        }
        return false;
    }

    private void startCompensation(SagaStep<D> step) {
        if (stopsForClose()) {
            return;
        }
        int i = step.index();
        cancelTimer(i);
        StepState state = shared.nextCompensationAttempt(i, stepStates.get(i));
        // A store with an outbox writes a remote compensation's command with its start, as a remote step's.
        Message outboxed = null;
        Exception commandError = null;
        if (step.remoteCompensation().isPresent() && orchestrator.transactionalMessages()) {
            try {
                outboxed = commandMessage(step, context(step, state.compensationAttempts()), true, true);
            } catch (Exception e) { // its factory threw, or the codec cannot encode it (an EncodingException)
                commandError = e;
            }
        }
        if (!stage(i, state, status, failure, compensationFailure, TransitionType.COMPENSATION_STARTED, step.name(),
                state.compensationAttempts(), null, outboxed) || !flush()) {
            return;
        }
        if (commandError != null) {
            // The attempt fails with it, as a remote step's does; the command is not published past the outbox.
            settleCompensation(step, stepStates.get(i), commandError);
            return;
        }
        if (step.compensation() == null || shared.groupStart[step.group() + 1] - shared.groupStart[step.group()] > 1) {
            compensateConcurrently(step, state.compensationAttempts(), outboxed != null);
            return;
        }
        if (callCompensation(step, state.compensationAttempts())) {
            onCompensationSuccess(step, state);
        }
    }

    /** {@code compensating}: the step's state while its compensation ran. */
    private void onCompensationSuccess(SagaStep<D> step, StepState compensating) {
        int i = step.index();
        if (writeStep(i, shared.compensated(i, compensating), TransitionType.COMPENSATION_SUCCEEDED,
                compensating.compensationAttempts(), null) && observedAndFlushed()) {
            notifyStep(TransitionType.COMPENSATION_SUCCEEDED, step, null);
        }
    }

    /**
     * A compensation the driving thread does not wait for: a remote one (its command, settled by the reply
     * in {@link #onCompensationReply}), an asynchronous one, or a parallel group member's synchronous one,
     * which runs on the parallel executor so that the members of the group are compensated at the same time,
     * as their actions ran. The next drive pass starts the next member's; the steps before the group wait
     * until every member settled. Other outcomes arrive in {@link #onConcurrentCompensation}. The step's
     * compensation timeout bounds each such wait: a compensation that overruns it failed its attempt (and a
     * late outcome is ignored).
     */
    private void compensateConcurrently(SagaStep<D> step, int attempt, boolean outboxed) {
        int i = step.index();
        StepContext context = context(step, attempt);
        D input = data;
        inFlight[i] = true;
        Instant started = null;
        CompletionStage<?> outcome;
        String[] previous = enterStep(step);
        try {
            if (step.remoteCompensation().isPresent()) { // its invocation is the handling of its reply, as a remote step's
                Message command = outboxed ? null : commandMessage(step, context, true, false);
                started = startOf(step.compensationTimeout()); // from the command built, as a remote step's deadline
                if (started != null) { // before the command is sent: a transport may deliver its reply on this thread
                    Uncommon state = uncommon();
                    if (state.compensationDeadlines == null) {
                        state.compensationDeadlines = new Instant[steps.length];
                    }
                    state.compensationDeadlines[i] = started.plus(step.compensationTimeout());
                }
                outcome = sendCompensationCommand(command);
            } else {
                started = startOf(step.compensationTimeout()); // the timeout counts from here, as an action's
                openInvocation(i, before(SagaInterceptor.Kind.COMPENSATION, context));
                outcome = step.asyncCompensation() != null ? step.asyncCompensation().compensate(input, context)
                        : compensateInParallel(step, input, context);
            }
        } catch (Exception e) { // includes a full executor: a failed attempt, retried per the compensation's policy
            now = null;
            settleCompensation(step, stepStates.get(i), rejectedCause(e));
            return;
        } finally {
            leaveLogContext(previous);
        }
        now = null;
        if (outcome == null) {
            outcome = CompletableFuture.failedFuture(new IllegalStateException("the asynchronous compensation of step '"
                    + step.name() + "' returned null instead of a stage"));
        }
        StepState current = stepStates.get(i);
        if (stopped || !inFlight[i] || current.status() != StepStatus.COMPENSATING || current.compensationAttempts() != attempt) {
            // Settled while its command was sent (its reply delivered on this thread): a timer armed now would take the
            // slot of the one its outcome armed (a retry's), which then never runs.
            return;
        }
        Duration timeout = step.compensationTimeout();
        // The timeout is cancelled when the outcome settles (at once, if it already has).
        if (timeout != null && !arm(i, left(timeout, started), () -> onConcurrentCompensation(step, attempt, null,
                SagaException.timeout(sagaId, step.name(), timeout)))) {
            return;
        }
        Instant begun = started;
        outcome.whenComplete((ignored, error) -> onConcurrentCompensation(step, attempt, begun, error));
    }

    private CompletionStage<Void> compensateInParallel(SagaStep<D> step, D input, StepContext context) {
        return onParallelExecutor(step, () -> {
            step.compensation().compensate(input, context);
            return null;
        });
    }

    /**
     * The outcome of a compensation the driving thread did not wait for: from its stage ({@code started}: when its
     * attempt started, null without a timeout), or its timer's timeout (null). One from its stage at or after
     * the compensation's deadline, its timer not run yet (the work ran while the engine started it), is the timeout's, as
     * for an action (onAsyncCompletion).
     */
    private synchronized void onConcurrentCompensation(SagaStep<D> step, int attempt, Instant started, Throwable error) {
        now = null;
        int i = step.index();
        StepState state = stepStates.get(i);
        if (stopped || state.status() != StepStatus.COMPENSATING || state.compensationAttempts() != attempt || !inFlight[i]) {
            if (log.isDebugEnabled()) { // as for a late completion
                debugOutsideADrive("saga {}: ignoring late outcome of compensation {} attempt {}", sagaId, step.name(),
                        attempt);
            }
            return;
        }
        Duration timeout = step.compensationTimeout();
        Throwable outcome = started != null && overran(timeout, started)
                ? SagaException.timeout(sagaId, step.name(), timeout) : unwrapped(error);
        recordAndDrive(() -> settleCompensation(step, state, outcome));
    }

    /**
     * The outcome of a compensation the driving thread did not wait for: succeeded when {@code cause} is null.
     * Ends its invocation if one is open (an asynchronous or parallel member's compensation started here; a remote
     * compensation's invocation is the handling of its reply, ended there).
     */
    private void settleCompensation(SagaStep<D> step, StepState state, Throwable cause) {
        int i = step.index();
        cancelTimer(i);
        endInvocation(i, cause);
        inFlight[i] = false;
        if (cause == null) {
            onCompensationSuccess(step, state);
        } else {
            onCompensationFailure(step, cause);
        }
    }

    /**
     * Sends a remote compensation's command (COMPENSATION_STARTED is stored by then; null: the store wrote the
     * command with it, and its relay publishes it). The returned stage fails only when the
     * command cannot be sent: otherwise the step stays COMPENSATING, persisted, until the reply. A run
     * recovered in that state starts the compensation again as a new attempt (the participant dedupes by the
     * command's idempotency key), as it does for a local compensation whose outcome was never recorded.
     */
    private CompletionStage<?> sendCompensationCommand(Message command) {
        CompletableFuture<Void> sendFailure = new CompletableFuture<>();
        if (command != null) { // else the store's outbox relay publishes it
            DefaultEventBus.publishOutsideDelivery(orchestrator.bus(), command).whenComplete((position, error) -> {
                if (error != null) {
                    sendFailure.completeExceptionally(error);
                }
            });
        }
        return sendFailure;
    }

    /**
     * A reply to {@code step}'s compensation command: completes the compensation if the step still
     * compensates, unless the reply answers an earlier attempt ({@link #ofAnEarlierAttempt}), also in a run this process
     * adopted after a restart, or comes at or after the deadline of the attempt this run sent (the compensation's timeout's
     * outcome then; a run that adopted the saga waiting for its reply knows no deadline). Returns what {@link #onReply}
     * does.
     */
    synchronized long onCompensationReply(SagaStep<D> step, Message reply) {
        now = null;
        StepState state = stepStates.get(step.index());
        if (stopped || state.status() != StepStatus.COMPENSATING) {
            log.debug("saga {}: ignoring compensation reply {} for step {} in status {}", sagaId, reply.id(), step.name(),
                    state.status());
            return -1;
        }
        if (ofAnEarlierAttempt(reply, state.compensationAttempts())) {
            log.debug("saga {}: ignoring compensation reply {} of a superseded attempt of step {}, which waits for"
                    + " attempt {}", sagaId, reply.id(), step.name(), state.compensationAttempts());
            return -1;
        }
        long takenAt = storedVersion;
        Instant[] deadlines = uncommon == null ? null : uncommon.compensationDeadlines;
        if (deadlines != null && isPast(deadlines[step.index()])) {
            // As a remote step's reply after its deadline (onReply): the timeout's outcome, whatever ran first.
            log.debug("saga {}: compensation reply {} of step {} attempt {} came after the attempt's deadline {}: it timed"
                    + " out", sagaId, reply.id(), step.name(), state.compensationAttempts(), deadlines[step.index()]);
            SagaTimeoutException timedOut = SagaException.timeout(sagaId, step.name(), step.compensationTimeout());
            recordAndDrive(() -> settleCompensation(step, state, timedOut));
            return takenAt;
        }
        SagaStep.RemoteCompensation<D> remote = step.remoteCompensation().orElseThrow();
        Object decoded = null;
        Exception undecoded = null;
        try { // as in onReply: a reply that cannot be decoded is refused, and the compensation waits on
            decoded = orchestrator.bus().codec().decode(reply, remote.replyType());
        } catch (DecodingException e) {
            throw undecodable(step, reply, "compensation ", e);
        } catch (RuntimeException e) {
            undecoded = e;
        }
        Throwable rejected = null;
        SagaInterceptor.Invocation invocation = null;
        String[] previous = enterStep(step); // as in onReply
        try {
            try { // the invocation is the reply's handling, as for a remote step's reply (onReply)
                invocation = before(SagaInterceptor.Kind.COMPENSATION, context(step, state.compensationAttempts()));
                if (undecoded != null) {
                    throw undecoded;
                }
                remote.onReply().onReply(data, decoded);
            } catch (Exception e) {
                rejected = e;
            } catch (Error e) {
                endedHandling(invocation, e);
                throw e;
            }
            rejected = endedHandling(invocation, rejected);
            now = null;
            Throwable outcome = rejected;
            recordAndDrive(() -> settleCompensation(step, state, outcome));
        } finally {
            leaveLogContext(previous);
        }
        return takenAt;
    }

    /**
     * The refusal of a reply the bus's codec cannot decode to {@code step}'s reply class: bad input, which the bus
     * dead-letters (not retriable), not the participant's outcome, so the step or its compensation goes on waiting, and
     * the reply, redriven once the orchestrator's registry reads it, completes it.
     */
    private SagaException undecodable(SagaStep<D> step, Message reply, String phase, DecodingException e) {
        return new SagaException(sagaId, step.name(), phase + "reply " + SagaException.quote(reply.id()) + " of step "
                + SagaException.quote(step.name()) + " cannot be decoded, so it is not taken and the step waits for"
                + " another reply or its timeout; once the orchestrator's TypeRegistry reads it (its type and version"
                + " registered), redrive it from the dead-letter topic: " + e.getMessage(), e, false);
    }

    /**
     * Whether {@code reply} answers an attempt earlier than {@code attempt}, the one its step (or compensation) waits
     * for: one that a retry superseded (its wait timed out, its reply was rejected, the operator retried it), whose
     * reply, late or delivered again, is not the outcome of the attempt in flight (the participant may answer that one
     * otherwise: a refusal from before it was fixed, say), as {@link SagaMessages} promises. A reply of a later attempt
     * is not: a run that waits for an earlier one is behind the store (another orchestrator adopted the saga and sent
     * that attempt), so it takes the reply, whose outcome's write then loses to that orchestrator's and leaves the reply
     * unacknowledged for the saga as stored. A reply without the {@link SagaMessages#ATTEMPT} header (not written by
     * {@link SagaMessages#reply}) cannot tell, and is taken; one whose header is not an attempt number is bad input,
     * refused with a non-retriable {@link SagaException} (the bus dead-letters it with that reason), not dropped.
     */
    static boolean ofAnEarlierAttempt(Message reply, int attempt) {
        String answered = reply.headers().get(SagaMessages.ATTEMPT);
        if (answered == null) {
            return false;
        }
        try {
            return Integer.parseInt(answered) < attempt;
        } catch (NumberFormatException e) {
            throw new SagaException(reply.sagaId().orElse(null), reply.header(SagaMessages.STEP).orElse(null), "reply "
                    + SagaException.quote(reply.id()) + " has a " + SagaMessages.ATTEMPT + " header "
                    + SagaException.quote(answered) + " that is not an attempt number", null, false);
        }
    }

    private void onCompensationFailure(SagaStep<D> step, Throwable error) {
        int i = step.index();
        StepState state = stepStates.get(i);
        String detail = PendingTransitions.describe(error);
        RetryPolicy policy = step.compensationRetryPolicy();
        if (policy.shouldRetry(error, state.compensationAttempts())) {
            Duration delay = orchestrator.retryDelay(policy, state.compensationAttempts() + 1);
            log.warn("saga {}: compensation of {} failed (attempt {}), retrying in {}: {}", sagaId, step.name(),
                    state.compensationAttempts(), delay, detail);
            writeStep(i, state.with(StepStatus.COMPENSATION_RETRY_SCHEDULED, now().plus(delay)),
                    TransitionType.COMPENSATION_RETRY_SCHEDULED, state.compensationAttempts(), detail);
            return;
        }
        // Logged once the write is stored (logFailures): one that loses to another orchestrator's is no failure.
        Uncommon u = uncommon();
        if (u.unloggedFailures == null) {
            u.unloggedFailures = new ArrayList<>(1);
        }
        u.unloggedFailures.add("compensation of " + step.name() + " failed for good after " + state.compensationAttempts()
                + " attempts: " + detail);
        // The error itself as the detail (described when written): a write the store refuses carries it on.
        if (!stage(i, state.with(StepStatus.COMPENSATION_FAILED), status, failure, SagaFailure.of(step.name(), error),
                TransitionType.COMPENSATION_FAILED, step.name(), state.compensationAttempts(), error, null)
                && !lostToAnotherWrite()) {
            // Not staged: stopped meanwhile (by the compensation's own code, a close()), which no flush follows; logged
            // as on any stop of this node's (a failed write has logged it already).
            logFailures();
        }
    }

    private void needsAttention(SagaFailure cause) {
        if (writeStatus(TransitionType.SAGA_NEEDS_ATTENTION, null, 0, cause, SagaStatus.FAILED_NEEDS_ATTENTION) && observedAndFlushed()) {
            orchestrator.onFailed(snapshot());
            now = null; // the listeners ran: the application's time
        }
    }

    // ---------------------------------------------------------------- operator and cancel

    /** Cancels a running saga: waiting or scheduled steps are settled, done steps compensated. */
    synchronized void cancel() {
        now = null;
        throwIfStoppedUnwritten();
        requireCancellable();
        long before = operatorCallBegins();
        try {
            SagaException cancelled = SagaException.cancelled(sagaId);
            SagaFailure cause = failure != null ? failure : SagaFailure.of(null, cancelled);
            recordAndDrive(() -> {
                if (stage(-1, null, SagaStatus.COMPENSATING, cause, null, TransitionType.SAGA_COMPENSATING,
                        null, 0, "cancelled", null)) {
                    if (exception == null) {
                        exception = cancelled;
                    }
                    // Written within the call, also when it is made while the run is driven (an action cancelling its
                    // own saga), whose pass would write it after the call returned: a refusal then is the call's.
                    if (flush() && orchestrator.observed()) {
                        orchestrator.onCompensationStarting(snapshot());
                        now = null; // the listeners ran: the application's time
                    }
                }
            });
        } finally {
            operatorCallEnds();
        }
        // Its refusal first: a run put back as before the call goes on in recordAndDrive, and may stop on a later write
        // of its own, the saga's version still the one before the call; that stop is the run's (its result's), not why
        // the call did not happen.
        throwIfRefused();
        requireWritten(before);
    }

    /** After an operator call that returns nothing: the refusal of its write on a run driven here, thrown. */
    private void throwIfRefused() {
        StreamSagaException refusal = takeRefusedCall();
        if (refusal != null) {
            throw refusal;
        }
    }

    /**
     * An operator call begins (its checks passed): returns the saga's stored version, which a write the store refuses
     * while it is still the stored one makes the call's ({@link #flush}). Its result is reopened first, so that a call
     * stopped at its own write fails the stage its caller gets; not that of a run that stopped before the call took its
     * lock (its write lost, say, while the call waited), whose result, failed with the reason, is the call's.
     */
    private long operatorCallBegins() {
        Uncommon u = uncommon();
        // A run driven here (its caller, or a listener's, may wait for its result) is put back as it was should the
        // store refuse the call's write, rather than stopped; one just made for the call has nobody waiting on it.
        u.beforeTheCall = u.createdForACall || staged != 0 ? null : new BeforeTheCall(stepStates, status, failure,
                compensationFailure, updatedAt, snapshot, data, exception, finished, changes);
        u.createdForACall = false;
        u.refusedCall = null;
        if (!stopped) {
            reopen();
        }
        u.operatorCallFrom = storedVersion;
        return storedVersion;
    }

    private void operatorCallEnds() {
        uncommon.operatorCallFrom = -1;
        uncommon.beforeTheCall = null;
    }

    /**
     * The store refused the write of the operator call in progress on a run driven here ({@code refusal}): the call did
     * not happen, so what it staged is dropped and the run is put back as it was when the call began, to go on as if the
     * call had not been made; the call gets the refusal ({@link #refusedCall}). Its later writes are the run's own.
     */
    @SuppressWarnings("unchecked")
    private void restoreBeforeTheCall(StreamSagaException refusal) {
        BeforeTheCall before = uncommon.beforeTheCall;
        unstage();
        if (commands != null) {
            commands.clear();
        }
        stepStates = before.stepStates();
        status = before.status();
        failure = before.failure();
        compensationFailure = before.compensationFailure();
        updatedAt = before.updatedAt();
        snapshot = before.snapshot();
        data = (D) before.data();
        exception = before.exception();
        finished = before.finished();
        changes = before.changes();
        uncommon.beforeTheCall = null;
        uncommon.operatorCallFrom = -1;
        uncommon.refusedCall = refusal;
    }

    /** The refusal of the operator call just made, taken: null when its write was not refused on a run driven here. */
    private StreamSagaException takeRefusedCall() {
        StreamSagaException refusal = uncommon == null ? null : uncommon.refusedCall;
        if (refusal != null) {
            uncommon.refusedCall = null;
        }
        return refusal;
    }

    /** A run made over the stored saga for an operator call ({@code runFor}), driven by nobody before the call. */
    synchronized void createdForACall() {
        uncommon().createdForACall = true;
    }

    /**
     * Operator: retries failed compensations (or a retriable step that exhausted its retries); returns the call's stage.
     * Null when the run finished before the call took its lock ({@link #endedBeforeTheCall}): nothing done.
     */
    synchronized CompletableFuture<SagaResult<D>> retryFailed() {
        if (endedBeforeTheCall()) {
            return null;
        }
        if (stopped) { // unfinished: see throwIfStoppedUnwritten; the stage is its result, failed with the reason
            return future;
        }
        now = null;
        requireNeedsAttention();
        operatorCallBegins();
        try {
            retryFailedNow();
        } finally {
            operatorCallEnds();
        }
        return callStage();
    }

    /**
     * The stage of a retry or skip just made: the run's result, or failed with the refusal of the call's write when the
     * run, driven here, was put back as before the call (its result is not the call's).
     */
    private CompletableFuture<SagaResult<D>> callStage() {
        StreamSagaException refusal = takeRefusedCall();
        return refusal == null ? future : CompletableFuture.failedFuture(refusal);
    }

    private void retryFailedNow() {
        StepState[] changed = stepStates.toArray(new StepState[0]);
        // Compensating: a compensation failed for good, or the store refused a write of the compensating saga (its
        // compensation failure is the refusal; see refusedAfterTheStart), which may have named no step.
        boolean compensating = failure != null && (compensationFailure != null || stepStates.stream()
                .anyMatch(s -> s.status() == StepStatus.COMPENSATION_FAILED));
        Instant at = now();
        for (int i = 0; i < changed.length; i++) {
            if (changed[i].status() == StepStatus.COMPENSATION_FAILED) {
                // Attempts go on counting, as a retried retriable step's do: a remote compensation's command id
                // (.../compensation/<attempt>) must not repeat one its participant already processed and dedupes.
                changed[i] = changed[i].with(StepStatus.COMPENSATION_RETRY_SCHEDULED, at);
            } else if ((changed[i].status() == StepStatus.FAILED || changed[i].status() == StepStatus.UNCERTAIN)
                    && steps[i].role() == StepRole.RETRIABLE) { // uncertain: its last attempt timed out, say
                changed[i] = changed[i].with(StepStatus.RETRY_SCHEDULED, at);
            } else if (!compensating && changed[i].status() == StepStatus.WAITING) {
                // A remote step whose reply's outcome the store refused (see refusedAfterTheStart): its participant
                // answered that attempt's command, and may ignore it sent again, so a new attempt, with a new command id.
                changed[i] = changed[i].with(StepStatus.RETRY_SCHEDULED, at);
            }
        }
        // A retried retriable step goes forward again: its failure made the saga compensate nothing. Written and told
        // outside a pass (observed): an Error from the store or a listener stops the run as in one (recordAndDrive).
        // Sent forward, the saga keeps no failure: what it retries after (the 'failed' event's error) is the retry's
        // detail, which its 'retried' event names, as 'resolved' names the failure resolved.
        SagaFailure retriedAfter = compensating ? null : compensationFailure != null ? compensationFailure : failure;
        recordAndDrive(() -> {
            if (stageSteps(List.of(changed), compensating ? SagaStatus.COMPENSATING : SagaStatus.RUNNING,
                    compensating ? failure : null, null, TransitionType.SAGA_RETRIED, null, 0, retriedAfter, null)) {
                if (!compensating) {
                    exception = null;
                }
                operatorRestarted(retriedAfter);
            }
        });
    }

    /** Operator: skips the failed compensation of one step and goes on compensating; as {@link #retryFailed}. */
    synchronized CompletableFuture<SagaResult<D>> skip(String stepName) {
        if (endedBeforeTheCall()) {
            return null;
        }
        if (stopped) { // as in retryFailed
            return future;
        }
        now = null;
        requireSkippable(stepName);
        operatorCallBegins();
        try {
            skipNow(stepName);
        } finally {
            operatorCallEnds();
        }
        return callStage();
    }

    private void skipNow(String stepName) {
        SagaStep<D> step = definition.step(stepName);
        StepState state = stepStates.get(step.index());
        boolean othersFailed = false;
        for (StepState s : stepStates) {
            othersFailed |= s != state && s.status() == StepStatus.COMPENSATION_FAILED;
        }
        SagaFailure stillFailed = othersFailed ? compensationFailure : null;
        if (othersFailed && (stillFailed == null || stepName.equals(stillFailed.step()))) {
            stillFailed = otherFailedCompensation(step.index()); // the one that needs attention now
        }
        boolean restarts = !othersFailed;
        SagaFailure attention = stillFailed;
        recordAndDrive(() -> { // as in retryFailedNow
            if (stage(step.index(), state.with(StepStatus.COMPENSATION_SKIPPED),
                    restarts ? SagaStatus.COMPENSATING : SagaStatus.FAILED_NEEDS_ATTENTION, failure,
                    attention, TransitionType.COMPENSATION_SKIPPED, stepName, 0, null, null)) {
                if (restarts) {
                    operatorRestarted(null);
                } else if (observedAndFlushed()) {
                    // Still needing attention, but for another compensation: the last 'failed' event and onFailed named
                    // the skipped one, so both are told again with the failure that needs attention now.
                    orchestrator.onFailed(snapshot());
                    now = null; // the listeners ran: the application's time
                }
            }
        });
    }

    /**
     * An operator's retry or skip just staged took the saga out of needing attention: once written, the lifecycle
     * topic, whose last event of it was {@code failed}, and the listeners hear of it now, not at its next event (a
     * retried remote compensation's reply, or its timeout): compensating again as a saga beginning to compensate,
     * running again as {@code retried} (see {@link DefaultSagaOrchestrator#lifecycleMessage}), naming
     * {@code retriedAfter}, the failure the saga needed attention for.
     */
    private void operatorRestarted(SagaFailure retriedAfter) {
        if (observedAndFlushed()) {
            if (status == SagaStatus.COMPENSATING) {
                orchestrator.onCompensationStarting(snapshot());
            } else {
                orchestrator.onRetried(snapshot(), retriedAfter);
            }
            now = null; // the listeners ran: the application's time
        }
    }

    /**
     * The failure of a compensation other than step {@code skipped}'s that failed for good: the instance keeps
     * only the last one, so it is read from the history (its transition's detail is the error's simple class
     * name and message); a store that keeps no history can only say which step.
     */
    private SagaFailure otherFailedCompensation(int skipped) {
        String other = null;
        for (int i = 0; i < steps.length && other == null; i++) {
            if (i != skipped && stepStates.get(i).status() == StepStatus.COMPENSATION_FAILED) {
                other = steps[i].name();
            }
        }
        List<SagaTransition> history = orchestrator.store().history(sagaId);
        for (int t = history.size() - 1; t >= 0; t--) {
            SagaTransition transition = history.get(t);
            if (transition.type() == TransitionType.COMPENSATION_FAILED && other.equals(transition.step())
                    && transition.detail() != null) {
                int colon = transition.detail().indexOf(": ");
                return colon < 0 ? new SagaFailure(other, transition.detail(), null)
                        : new SagaFailure(other, transition.detail().substring(0, colon), transition.detail().substring(colon + 2));
            }
        }
        return new SagaFailure(other, SagaException.class.getName(), "its compensation failed for good");
    }

    /** Operator: the saga was repaired by hand; false as {@link #retryFailed}. */
    synchronized boolean resolve() {
        if (endedBeforeTheCall()) {
            return false;
        }
        now = null;
        throwIfStoppedUnwritten();
        requireNeedsAttention();
        long before = operatorCallBegins();
        try {
            recordAndDrive(() -> { // written and told outside a pass: an Error there stops the run as in one
                if (writeStatus(TransitionType.SAGA_RESOLVED, null, 0, null, SagaStatus.RESOLVED) && observedAndFlushed()) {
                    orchestrator.onResolved(snapshot());
                    now = null; // the listeners ran: the application's time
                }
            });
        } finally {
            operatorCallEnds();
        }
        requireWritten(before);
        throwIfRefused();
        return true;
    }

    /**
     * Whether the run finished before an operator call that found it registered took its lock: needing attention (a
     * compensation failed for good, {@link #finish}) or as it stopped (the store refused its write, and it stored the
     * saga needing attention: {@link #refusedAfterTheStart}). Either way it is no longer registered, and the saga,
     * stored as the run has it, is to be called on anew (a run over the stored instance, registered): this run, driven
     * again, would go on unregistered, its result not result()'s, a recover() adopting the saga as a second run here.
     */
    private boolean endedBeforeTheCall() {
        return finished;
    }

    /**
     * Before an operator call's check: a run that stopped unfinished before the call took its lock (its write lost to
     * another orchestrator's, the store failed) may hold changes it staged and never stored, so the call, which did not
     * happen, throws the reason it stopped with rather than a check's verdict on that state.
     */
    private void throwIfStoppedUnwritten() {
        if (stopped && !finished) {
            throwStopReason();
        }
    }

    /**
     * After an operator call that returns nothing (cancel, resolve): when the run stopped before any of its writes
     * was stored (another orchestrator wrote the saga first, the store failed), the call did not happen, and its
     * caller gets the reason the run stopped with, as the other calls' callers get it from their stage.
     */
    private void requireWritten(long before) {
        if (stopped && storedVersion == before) {
            throwStopReason();
        }
    }

    /**
     * Throws the reason the run stopped with, to an operator call that therefore did not happen: an Error (the run
     * abandoned as if the process died there, {@link #abandon}) in a SagaException, retriable as the saga resumes on
     * recover(), the caller's thread not being the one it struck; none when the run stopped without a reason.
     */
    private void throwStopReason() {
        Throwable reason = uncommon == null ? null : uncommon.stopReason;
        if (reason instanceof RuntimeException e) {
            throw e;
        }
        if (reason != null) {
            throw new SagaException(sagaId, null, "saga " + SagaException.quote(sagaId) + ": its run here stopped on "
                    + reason + " before the operator call, which did not happen; the saga resumes on recover()",
                    reason, true);
        }
    }

    private void reopen() {
        finished = false;
        if (future.isDone()) {
            future = new CompletableFuture<>();
        }
    }

    /* The checks of the operator calls: also made on a run read from the store before it is registered (runFor). */

    void requireCancellable() {
        if (status != SagaStatus.RUNNING) {
            throw SagaException.illegalState(sagaId, null, "cannot cancel a saga in status " + status);
        }
        boolean everyStepSucceeded = true;
        for (int i = 0; i < steps.length; i++) {
            StepStatus stepStatus = stepStates.get(i).status();
            // Past the pivot (or into the retriable steps) a saga cannot go back: it must complete.
            if (steps[i].role() == StepRole.PIVOT && stepStatus == StepStatus.SUCCEEDED
                    || steps[i].role() == StepRole.RETRIABLE && stepStatus != StepStatus.PENDING) {
                throw SagaException.illegalState(sagaId, null, "cannot cancel a saga past its pivot: step '"
                        + steps[i].name() + "' (" + steps[i].role() + ") is " + stepStatus);
            }
            // A pivot in flight (running, its outcome not recorded, or waiting for its reply) may succeed: the saga could
            // not go back then, and compensating the steps before it would leave the pivot's effect alone. If it fails,
            // the saga compensates without a cancel. So may a pivot waiting for its retry after an attempt that may have
            // taken effect (timed out, not interrupted; a remote one's): its retry, idempotent, then succeeds.
            if (steps[i].role() == StepRole.PIVOT && (stepStatus == StepStatus.RUNNING || stepStatus == StepStatus.WAITING
                    || stepStatus == StepStatus.RETRY_SCHEDULED && earlierAttemptsMayHaveTakenEffect(i))) {
                throw SagaException.illegalState(sagaId, null, "cannot cancel a saga while its pivot step '"
                        + steps[i].name() + "' is " + stepStatus + ": if it succeeds the saga cannot go back, if it fails"
                        + " the saga compensates");
            }
            everyStepSucceeded &= stepStatus == StepStatus.SUCCEEDED;
        }
        // Still RUNNING only in the drive that completes it (a listener's onStepCompleted of the last step, a run
        // stored before its completion): the saga is done, a step without compensation would stay done.
        if (everyStepSucceeded) {
            throw SagaException.illegalState(sagaId, null,
                    "cannot cancel a saga whose every step succeeded: it completes");
        }
    }

    void requireNeedsAttention() {
        if (status != SagaStatus.FAILED_NEEDS_ATTENTION) {
            throw SagaException.illegalState(sagaId, null, "the operation needs status FAILED_NEEDS_ATTENTION, "
                    + "but the saga is " + status);
        }
    }

    void requireSkippable(String stepName) {
        requireNeedsAttention();
        StepState state = stepStates.get(definition.step(stepName).index());
        if (state.status() != StepStatus.COMPENSATION_FAILED) {
            throw SagaException.illegalState(sagaId, stepName, "only a failed compensation can be skipped, but the step is "
                    + state.status());
        }
    }

    /** Stops driving (orchestrator closed or another orchestrator took over). */
    synchronized void stop(Throwable reason) {
        stopped = true;
        if (reason != null && (uncommon == null || uncommon.stopReason == null)) {
            uncommon().stopReason = reason;
        }
        for (int i = 0; i < timers.length; i++) {
            cancelTimer(i);
        }
        // Outcomes arriving from now on are ignored: the invocations still open end here, with the reason.
        if (uncommon != null && uncommon.openInvocations != null) {
            for (int i = 0; i < steps.length; i++) {
                endInvocation(i, reason);
            }
        }
        if (reason != null) {
            future.completeExceptionally(reason);
        }
    }

    /**
     * The version this run last wrote, read without the run's lock: a hint for {@link DefaultSagaOrchestrator}'s
     * recovery, which confirms it under the lock ({@link #dropIfSuperseded}) before acting on it.
     */
    long storedVersionHint() {
        return storedVersion;
    }

    /** The time of this run's last transition, read without the run's lock: a hint, as {@link #storedVersionHint}. */
    Instant updatedAtHint() {
        return updatedAt;
    }

    /**
     * Whether another orchestrator wrote the saga since this run last did (it adopted the saga while this run
     * waited for a reply that went to it, say), which this run would learn only at its next write, and nothing
     * may wake it for that (a remote step without a timeout): the run then stops as on a write it lost, its
     * result completing exceptionally with a {@link ConcurrentSagaUpdateException}, and is no longer registered,
     * logged as such a write is, at INFO ({@link #movedOn}). Under the run's lock, so that no write of its own is in
     * progress; never while this thread drives it.
     */
    synchronized boolean dropIfSuperseded() {
        if (stopped || driving || storedVersion == 0) {
            return false;
        }
        SagaInstance stored = orchestrator.store().find(sagaId).orElse(null);
        long current = stored == null ? 0 : stored.version(); // deleted: finished and purged elsewhere
        if (stored != null && current <= storedVersion) {
            return false;
        }
        ConcurrentSagaUpdateException lost = new ConcurrentSagaUpdateException(sagaId, storedVersion, current);
        movedOn(stored, "", lost); // as a write lost to that orchestrator's: the saga went on there, nothing failed here
        stopHere(lost);
        return true;
    }

    /**
     * For a run a recovery just made from its query's reading (of version {@code read}) and registered, before it
     * drives it: whether the store no longer holds that version (the saga moved since the query), in which case
     * the run stops as in {@link #dropIfSuperseded} (a caller that found it registered meanwhile, through
     * {@code result(id)}, gets the {@link ConcurrentSagaUpdateException}). Under the run's lock, so that a write of
     * its own (an operator call that found it registered) is not taken for another's: the run then stays. When
     * the store cannot be read, the run stops with that failure, is no longer registered, and it is thrown (an
     * Error too, as in {@link #drive()}).
     */
    synchronized boolean dropIfMovedSinceRead(long read) {
        if (stopped) {
            return true; // stopped meanwhile (a write it lost, close()): not driven here
        }
        if (driving || storedVersion != read) {
            return false; // driven or written here since it was registered
        }
        SagaInstance stored;
        try {
            stored = orchestrator.store().find(sagaId).orElse(null);
        } catch (RuntimeException e) { // not left registered and undriven: every later recover would skip it
            stopHere(e);
            throw e;
        } catch (Error e) { // so too, as in drive(): stopped as if the process died there, and rethrown
            abandon(e);
            throw e;
        }
        if (stored != null && stored.version() == storedVersion) {
            return false;
        }
        log.debug("saga {}: changed since the recovery read it; left to the next one", sagaId);
        drop(stored == null ? 0 : stored.version());
        return true;
    }

    /** What {@link #claim} did. */
    enum Claim {
        /** The saga is stored under this node's id (written now, or already). */
        CLAIMED,
        /** Another orchestrator wrote the saga first (it adopted it too): the run stopped and is not registered. */
        LOST,
        /**
         * The run stopped for another reason (the store failed, at this write or at one of an operator call that drove
         * the run meanwhile; the orchestrator closed): it is not registered; the next recovery tries again.
         */
        FAILED
    }

    /**
     * With saga ownership, for a run a recovery just adopted and registered, before it drives it: writes the saga under this node's id (a {@code SAGA_ADOPTED} transition naming the previous owner),
     * so that of two nodes adopting it at once the optimistic version check lets one go on. Nothing is written when
     * the saga already is this node's (a restart under the same id) or the run wrote it since it was read (an
     * operator call that found it registered: its write carries this node's id). An Error from the store stops the
     * run as in {@link #drive()} ({@link #abandon}) and is rethrown.
     */
    synchronized Claim claim() {
        if (stopped) { // by another thread meanwhile (an operator call that drove it, close()): as it stopped
            return lostToAnotherWrite() ? Claim.LOST : Claim.FAILED;
        }
        // Not driven, so nothing is staged: the instance as stored, read (with its owner) or written here (with ours).
        String owner = snapshot().owner();
        if (driving || orchestrator.nodeId().equals(owner)) {
            return Claim.CLAIMED;
        }
        now = null;
        boolean written;
        try {
            written = writeStatus(TransitionType.SAGA_ADOPTED, null, 0, owner == null ? "no owner" : "from " + owner,
                    status) && flush();
        } catch (Error e) { // as in drive(): stopped as if the process died there (not left registered), rethrown
            abandon(e);
            throw e;
        }
        if (written) {
            return Claim.CLAIMED;
        }
        return lostToAnotherWrite() ? Claim.LOST : Claim.FAILED;
    }

    /** The reason the run stopped with (a store failure, say), or null: a recovery reports it when a claim failed. */
    synchronized Throwable stopReason() {
        return uncommon == null ? null : uncommon.stopReason;
    }

    /** Whether the run stopped on a write that another orchestrator's won (not on a store failure, close(), ...). */
    private boolean lostToAnotherWrite() {
        return uncommon != null && uncommon.stopReason instanceof ConcurrentSagaUpdateException;
    }

    /** Stops as on a write it lost, the store having version {@code current}, and is no longer registered. */
    private void drop(long current) {
        stopHere(new ConcurrentSagaUpdateException(sagaId, storedVersion, current));
    }

    /**
     * Stops the run where it is, for {@code reason}: what is staged and not written is dropped (the transitions
     * and the commands that were to be written with them), the run is no longer registered, and its result
     * completes with the reason; the store keeps what was written, from which recover() resumes the saga.
     */
    private void stopHere(Throwable reason) {
        logFailures(); // staged, not written for a reason of this node's (its write lost to another's: cleared before)
        unstage();
        if (commands != null) {
            commands.clear();
        }
        orchestrator.detach(this);
        stop(reason);
    }

    /**
     * Whether the run stopped before its saga's outcome was stored: not so for one that finished as it stopped (the
     * store refused a write, and the saga is stored needing attention: {@link #refusedAfterTheStart}).
     */
    synchronized boolean stoppedUnfinished() {
        return stopped && !finished;
    }

    // ---------------------------------------------------------------- end

    private void finish() {
        if (finished || !flush()) {
            return;
        }
        finished = true;
        for (int i = 0; i < timers.length; i++) {
            cancelTimer(i);
        }
        SagaOutcome outcome = switch (status) {
            case COMPLETED -> SagaOutcome.COMPLETED;
            case COMPENSATED -> SagaOutcome.COMPENSATED;
            case RESOLVED -> SagaOutcome.RESOLVED;
            default -> SagaOutcome.FAILED_NEEDS_ATTENTION;
        };
        orchestrator.onFinished(this, snapshot(), outcome);
        future.complete(new SagaResult<>(sagaId, outcome, data, failure, compensationFailure, exception,
                definition.version()));
    }

    synchronized CompletableFuture<SagaResult<D>> pendingResult() {
        return future;
    }

    // ---------------------------------------------------------------- persistence

    private boolean writeStep(int i, StepState state, TransitionType type, int attempt, Object detail) {
        return stage(i, state, status, failure, compensationFailure, type, steps[i].name(), attempt, detail, null);
    }

    /** A saga-level transition to {@code newStatus}. */
    private boolean writeStatus(TransitionType type, String step, int attempt, Object detail, SagaStatus newStatus) {
        return stage(-1, null, newStatus, failure, compensationFailure, type, step, attempt, detail, null);
    }

    /** Stages a change of step {@code index} (none when negative) and of the saga's status and failures. */
    private boolean stage(int index, StepState state, SagaStatus newStatus, SagaFailure newFailure,
                          SagaFailure newCompensationFailure, TransitionType type, String step, int attempt, Object detail,
                          Message command) {
        return stageSteps(index < 0 ? stepStates : shared.replaced(stepStates, index, state), newStatus, newFailure,
                newCompensationFailure, type, step, attempt, detail, command);
    }

    /**
     * Makes the change the run's state and stages its transition; {@code command} (non-null only for a
     * store with transactional messages) is written with it. Without transition batches the write happens
     * at once. Returns false when the run stopped (nothing is changed then).
     */
    private boolean stageSteps(List<StepState> newSteps, SagaStatus newStatus, SagaFailure newFailure,
                               SagaFailure newCompensationFailure, TransitionType type, String step, int attempt,
                               Object detail, Message command) {
        if (stopped) {
            return false;
        }
        stepStates = newSteps;
        status = newStatus;
        failure = newFailure;
        compensationFailure = newCompensationFailure;
        updatedAt = now();
        snapshot = null;
        changes++;
        record(type, step, attempt, detail, updatedAt);
        if (command != null) {
            if (commands == null) {
                commands = new ArrayList<>(2);
            }
            commands.add(command);
        }
        return orchestrator.batchesTransitions() || flush();
    }

    /**
     * {@link #stageSteps} of a straight run's step change (its first attempt or first compensation): the
     * status and failures stay as they are, and the store takes batches, so nothing is written yet.
     */
    private boolean stageStraight(List<StepState> newSteps, TransitionType type, String step) {
        if (stopped) {
            return false;
        }
        stepStates = newSteps;
        updatedAt = now();
        snapshot = null;
        changes++;
        record(type, step, 1, null, updatedAt);
        return true;
    }

    /**
     * The instance as the run has it: as stored, or with the staged changes (then of the version their write
     * produces). Built when asked for: the engine keeps its state in fields, so a transition costs no instance.
     */
    private SagaInstance snapshot() {
        SagaInstance built = snapshot;
        if (built == null) {
            built = new SagaInstance(sagaId, definition.name(), definition.version(), businessKey, dataType, data, status,
                    stepStates, failure, compensationFailure, createdAt, updatedAt,
                    staged == 0 ? storedVersion : storedVersion + 1, orchestrator.nodeId());
            snapshot = built;
        }
        return built;
    }

    /** Writes the staged transitions, if any, before the engine acts; on a lost race or a store failure the run stops. */
    private boolean flush() {
        if (stopped) {
            logFailures();
            return false;
        }
        if (staged == 0) {
            return true;
        }
        SagaInstance current = snapshot();
        boolean insert = storedVersion == 0;
        PendingTransitions transitions = pending == null ? null : pending.of(current.sagaId(), current.version());
        try {
            if (orchestrator.transactionalMessages()) {
                List<Message> outgoing = new ArrayList<>(commands == null ? List.of() : commands);
                for (int t = 0; t < transitions.size(); t++) {
                    Message event = orchestrator.lifecycleMessage(current, transitions.get(t));
                    if (event != null) {
                        outgoing.add(event);
                    }
                }
                // Never batched (see DefaultSagaOrchestrator.batchesTransitions): exactly one transition here.
                if (insert) {
                    orchestrator.store().insert(current, transitions.get(0), outgoing);
                } else {
                    orchestrator.store().update(current, transitions.get(0), outgoing);
                }
            } else if (orchestrator.batchesTransitions()) {
                if (insert) {
                    orchestrator.store().insertAll(current, transitions == null ? List.of() : transitions);
                } else {
                    orchestrator.store().updateAll(current, transitions == null ? List.of() : transitions);
                }
            } else if (insert) {
                orchestrator.store().insert(current, transitions.get(0));
            } else {
                // By parts: a store that keeps no history then builds no transition object.
                orchestrator.store().update(current, transitions.type(0), transitions.step(0), transitions.attempt(0),
                        transitions.detail(0));
            }
        } catch (ConcurrentSagaUpdateException e) {
            if (insert) {
                log.warn("saga {}: a saga with this id is already stored; this start stops: {}", current.sagaId(),
                        e.getMessage());
            } else {
                movedOnElsewhere(e);
            }
            stopHere(e);
            return false;
        } catch (ConfigurationException | SagaWriteRefusedException e) { // refused, and would be refused again
            logFailures();
            if (!insert && uncommon != null && uncommon.operatorCallFrom == storedVersion) {
                // An operator call's own write (with what it drove along): the call did not happen, and its caller gets
                // the refusal itself; the saga stays as stored (a running one is not taken for one whose progress the
                // store refuses). A run driven here before the call goes on as if it had not been made; one made for
                // the call stops (recover() resumes a running saga).
                log.warn("saga {}: the store refuses the write of an operator call, which did not happen; the saga stays"
                        + " as stored: {}", current.sagaId(), e.getMessage());
                if (uncommon.beforeTheCall != null) {
                    restoreBeforeTheCall(e);
                } else {
                    stopHere(e);
                }
                return false;
            }
            if (!insert) { // stored before: a retry would be refused again (see refusedAfterTheStart)
                return refusedAfterTheStart(transitions, current, e);
            }
            // The store refuses a start (an id or key longer than its column): nothing was written, and writing it
            // again would be refused again, so the caller gets the refusal itself, not a store failure.
            log.warn("saga {}: the store refuses it; the saga stops here: {}", current.sagaId(), e.getMessage());
            stopHere(e);
            return false;
        } catch (RuntimeException e) {
            logFailures();
            return storeFailed(transitions, current, e);
        }
        storedVersion = current.version();
        unstage();
        if (commands != null) {
            commands.clear();
        }
        if (uncommon != null && uncommon.unloggedFailures != null) {
            logFailures();
        }
        return true;
    }

    /** Logs the failures for good of what was staged ({@link Uncommon#unloggedFailures}), at ERROR, once. */
    private void logFailures() {
        List<String> failures = uncommon == null ? null : uncommon.unloggedFailures;
        if (failures != null) {
            uncommon.unloggedFailures = null;
            for (String failure : failures) {
                log.error("saga {}: {}", sagaId, failure);
            }
        }
    }

    /**
     * The run's write lost to another orchestrator's ({@code lost}): that one moved the saga on (a reply of this run's
     * attempt reached it, and this run learns of it at the attempt's timeout, say), so what this run staged (a timeout,
     * a compensation failed for good) is not the saga's outcome: logged once, at INFO with the saga as stored (at WARN
     * when the store cannot be read for it), naming as not written the compensations it staged as failed for good
     * (held unlogged until then: {@link Uncommon#unloggedFailures}). Only on this rare path is the store read.
     */
    private void movedOnElsewhere(ConcurrentSagaUpdateException lost) {
        List<String> failures = uncommon == null ? null : uncommon.unloggedFailures;
        if (failures != null) {
            uncommon.unloggedFailures = null;
        }
        String unwritten = failures == null ? "" : " (not written: " + String.join("; ", failures) + ")";
        SagaInstance stored;
        try {
            stored = orchestrator.store().find(sagaId).orElse(null);
        } catch (RuntimeException e) {
            log.warn("saga {}: moved on by another node, whose outcome cannot be read ({}); this one stops{}: {}", sagaId,
                    e.toString(), unwritten, lost.getMessage());
            return;
        }
        movedOn(stored, unwritten, lost);
    }

    /**
     * Logs, once, at INFO, that another orchestrator moved the saga on, as {@code stored} (null: finished and purged
     * there), so that this run, which stops with {@code lost}, did not write {@code unwritten} (empty, or what it
     * staged: {@link #movedOnElsewhere}).
     */
    private void movedOn(SagaInstance stored, String unwritten, ConcurrentSagaUpdateException lost) {
        if (stored == null) {
            log.info("saga {}: moved on by another node, finished and purged there; this one stops{}: {}", sagaId,
                    unwritten, lost.getMessage());
        } else {
            log.info("saga {}: moved on by another node{}: stored {} at version {}; this one stops{}: {}", sagaId,
                    stored.owner() == null ? "" : " (owner " + stored.owner() + ")", stored.status(), stored.version(),
                    unwritten, lost.getMessage());
        }
    }

    /**
     * The store refused a write of a saga it holds ({@code refusal}: a value it cannot keep, such as a step's result that
     * cannot be written as JSON, or a compensation's failure whose class is longer than its column, a
     * {@link ConfigurationException}; or what the write meets in the store, such as an outbox row with the id of its
     * command, a {@link SagaWriteRefusedException}). The refusal does not
     * change on a retry: a step or compensation re-run by recover() has the same outcome, refused again, for ever. So the
     * saga is stored as it was before that write with status {@link SagaStatus#FAILED_NEEDS_ATTENTION}, its result
     * completes with that outcome, recover() leaves it alone, and an operator resolves it or, once the cause is fixed,
     * retries it. A running saga keeps its data and steps as stored, the refusal its failure naming the step whose
     * success the write held ({@code retryCompensation} re-runs the step). A compensating saga keeps its failure, the
     * refusal its compensation failure naming the step whose compensation's outcome the write held, and each step whose
     * compensation state the write changed is stored {@code COMPENSATION_FAILED}, for {@code retryCompensation} (its
     * compensation runs again: compensations are idempotent) or {@code skipCompensation}. The errors the refused write
     * held (a step's, a compensation's) go with the refusal, which becomes the result's exception. Only on this rare path
     * is the store read. A read of the saga that fails, or a needs-attention write that fails, stays a store failure
     * ({@link #storeFailed}); a needs-attention write refused as well stops the run with the saga as stored before
     * ({@link #refusedTwice}); a saga another writer moved meanwhile is left to it.
     */
    private boolean refusedAfterTheStart(PendingTransitions transitions, SagaInstance current, StreamSagaException refusal) {
        // The original errors are never swallowed: a step's failure the refused write held (the reason the saga was
        // about to compensate), a compensation's failure, go with the refusal, which the result or the failure carries.
        // Through suppressIn: a store may throw one instance for a refusal that does not change, and an exception
        // cannot suppress itself (Throwable throws).
        if (exception != null) {
            PendingTransitions.suppressIn(refusal, exception);
        }
        if (transitions != null) {
            transitions.suppressErrorsIn(refusal);
        } else if (uncommon != null && uncommon.unrecordedErrors != null) {
            for (Throwable error : uncommon.unrecordedErrors) {
                PendingTransitions.suppressIn(refusal, error);
            }
        }
        SagaInstance stored;
        try {
            stored = orchestrator.store().find(sagaId).orElse(null);
        } catch (RuntimeException e) {
            PendingTransitions.suppressIn(refusal, e);
            return storeFailed(transitions, current, refusal);
        }
        if (stored == null || stored.version() != storedVersion) {
            drop(stored == null ? 0 : stored.version());
            return false;
        }
        String step = transitions == null ? null : transitions.lastStep();
        List<StepState> attentionSteps = stored.steps();
        SagaFailure attentionFailure;
        SagaFailure attentionCompensationFailure;
        if (stored.status() == SagaStatus.RUNNING) {
            for (int i = 0; i < steps.length; i++) { // the step whose success the refused write held: its result was refused
                if (current.steps().get(i).status() == StepStatus.SUCCEEDED
                        && stored.steps().get(i).status() != StepStatus.SUCCEEDED) {
                    step = steps[i].name();
                }
            }
            attentionFailure = SagaFailure.of(step, refusal);
            attentionCompensationFailure = stored.compensationFailure();
        } else if (stored.status() == SagaStatus.COMPENSATING) {
            StepState[] changed = stored.steps().toArray(new StepState[0]);
            String named = null;
            for (int i = 0; i < steps.length; i++) { // the steps whose compensation's outcome (or start) the write held
                StepState before = changed[i];
                if (!before.equals(current.steps().get(i)) && steps[i].hasCompensation()
                        && before.status().needsCompensation()) {
                    changed[i] = before.with(StepStatus.COMPENSATION_FAILED);
                    if (named == null || steps[i].name().equals(step)) {
                        named = steps[i].name();
                    }
                }
            }
            step = named != null ? named : step;
            attentionSteps = List.of(changed);
            attentionFailure = stored.failure();
            attentionCompensationFailure = SagaFailure.of(step, refusal);
        } else { // an operator's write of a saga that needs attention
            return storeFailed(transitions, current, refusal);
        }
        Instant at = now();
        SagaInstance attention = new SagaInstance(sagaId, stored.sagaName(), stored.definitionVersion(),
                stored.businessKey(), stored.dataType(), stored.data(), SagaStatus.FAILED_NEEDS_ATTENTION, attentionSteps,
                attentionFailure, attentionCompensationFailure, stored.createdAt(), at, storedVersion + 1,
                orchestrator.nodeId());
        SagaTransition transition = new SagaTransition(sagaId, attention.version(), at,
                TransitionType.SAGA_NEEDS_ATTENTION, step, 0, PendingTransitions.describe(refusal));
        try {
            if (orchestrator.transactionalMessages()) {
                Message event = orchestrator.lifecycleMessage(attention, transition);
                orchestrator.store().update(attention, transition, event == null ? List.of() : List.of(event));
            } else if (orchestrator.batchesTransitions()) {
                orchestrator.store().updateAll(attention, List.of(transition));
            } else {
                orchestrator.store().update(attention, transition);
            }
        } catch (ConcurrentSagaUpdateException e) {
            stopHere(e);
            return false;
        } catch (ConfigurationException | SagaWriteRefusedException e) {
            PendingTransitions.suppressIn(refusal, e);
            return refusedTwice(stored, step, refusal);
        } catch (RuntimeException e) {
            PendingTransitions.suppressIn(refusal, e);
            return storeFailed(transitions, current, refusal);
        }
        log.error("saga {}: the store refuses a write of it (status {}, step {}, failure {}, compensation failure {}),"
                + " which a retry would not change; the saga needs attention, stored as before that write: {}", sagaId,
                current.status(), step, current.failure(), current.compensationFailure(), refusal.getMessage());
        storedVersion = attention.version();
        unstage();
        if (commands != null) {
            commands.clear();
        }
        stepStates = attention.steps();
        status = SagaStatus.FAILED_NEEDS_ATTENTION;
        failure = attention.failure();
        compensationFailure = attention.compensationFailure();
        updatedAt = at;
        snapshot = attention;
        exception = refusal;
        try { // listeners and the result get the data bound, as the stored one (a JSON tree from a durable store)
            data = orchestrator.dataOf(definition, stored.data());
            snapshot = null;
        } catch (RuntimeException e) {
            log.debug("saga {}: its stored data is not read back for its result: {}", sagaId, e.toString());
        }
        SagaInstance finalState = snapshot();
        // Listeners first, the run still registered and not finished: an operator call one makes (markResolved, say)
        // is made on this run, as during a needs-attention write's report, not called anew for ever (endedBeforeTheCall).
        int before = changes;
        orchestrator.onFailed(finalState);
        now = null; // the listeners ran: the application's time
        if (finished || changes != before && !stopped) {
            // Such a call was made (markResolved, retryCompensation, a skipCompensation that leaves the saga needing
            // attention): the run goes on from it, registered, and reports only how that ends (finish), as after a
            // needs-attention write's report, not also this finish; inside a pass, the pass writes what the call staged.
            return false;
        }
        finished = true;
        orchestrator.onFinished(this, finalState, SagaOutcome.FAILED_NEEDS_ATTENTION);
        future.complete(new SagaResult<>(sagaId, SagaOutcome.FAILED_NEEDS_ATTENTION, data, failure, compensationFailure,
                exception, definition.version()));
        orchestrator.detach(this);
        stop(refusal); // its result is complete: this ends the timers and the invocations still open
        return false;
    }

    /**
     * The store refused a write of the saga and then the write marking it as needing attention ({@code refusal}, the
     * second refusal suppressed by it): nothing more is written, so the saga stays as {@code stored}, the last state the
     * store took, and nothing it held is lost. The run stops, its result failing with a {@link SagaException} that is
     * not retriable (a retry meets the same refusal), its cause the refusal with the original errors; logged at error.
     * recover() resumes the saga as stored, and meets the refusal again until the store takes the value or the data is
     * repaired.
     */
    private boolean refusedTwice(SagaInstance stored, String step, StreamSagaException refusal) {
        log.error("saga {}: the store refuses a write of it and the write marking it as needing attention; it stays as"
                + " stored before that write (status {}, version {}), which recover() resumes, to meet the refusal again"
                + " until the store takes the value: {}", sagaId, stored.status(), stored.version(), refusal.toString());
        stopHere(new SagaException(sagaId, step, "saga " + SagaException.quote(sagaId) + ": the store refuses a write of"
                + " it and the write marking it as needing attention; it stays as stored before (status "
                + stored.status() + "): " + refusal.getMessage(), refusal, false));
        return false;
    }

    /**
     * The reason the run stopped with when the store refused a write of it and then the write marking the saga as
     * needing attention ({@link #refusedTwice}), that refused write being the first after the run took a reply at stored
     * version {@code takenAt} ({@link #onReply}), so holding its outcome, which the reply delivered again to the saga as
     * stored meets again; null when it stopped otherwise, or not at all, or after a write of the reply's outcome was
     * stored (the saga no longer waits for the reply), or when the run ignored it ({@code takenAt} -1).
     */
    synchronized SagaException refusedTwiceReason(long takenAt) {
        Throwable reason = uncommon == null ? null : uncommon.stopReason;
        return storedVersion == takenAt && reason instanceof SagaException e && !e.isRetriable()
                && (e.getCause() instanceof ConfigurationException || e.getCause() instanceof SagaWriteRefusedException)
                ? e : null;
    }

    /**
     * A write of {@code current} failed: the run stops, and the orchestrator resumes the saga from what is stored once
     * the store answers (as recover() does), and logs it ({@link DefaultSagaOrchestrator#storeFailed}).
     */
    private boolean storeFailed(PendingTransitions transitions, SagaInstance current, RuntimeException e) {
        String step = transitions == null ? null : transitions.lastStep();
        long written = storedVersion;
        stopHere(new SagaException(current.sagaId(), step, "saga store failed: " + e.getMessage(), e, true));
        orchestrator.storeFailed(current.sagaId(), written, current, e);
        return false;
    }

    /**
     * Called before a step or compensation starts: once close() began while this run was driven (a synchronous
     * action ran on another thread, holding the run's lock), the outcomes staged so far are written (and were
     * reported), nothing more is started and the run stops; recover() goes on from the store. One volatile read
     * on the common path.
     */
    private boolean stopsForClose() {
        if (!orchestrator.isClosed()) {
            return false;
        }
        if (flush()) { // when the write fails, flush stops the run itself
            stopHere(new SagaException(sagaId, null, "orchestrator closed; the saga resumes on recover()", null, true));
        }
        return true;
    }

    /**
     * Whether listeners or lifecycle events are to hear of the transition just staged: only when someone
     * listens, and then only after it is written.
     */
    private boolean observedAndFlushed() {
        return orchestrator.observed() && flush();
    }

    private void record(TransitionType type, String step, int attempt, Object detail, Instant at) {
        staged++;
        if (pending != null) {
            pending.add(type, step, attempt, detail, at);
        } else if (detail instanceof Throwable error && error != exception) { // for a write the store refuses only
            Uncommon u = uncommon();
            if (u.unrecordedErrors == null) {
                u.unrecordedErrors = new ArrayList<>(2);
            }
            u.unrecordedErrors.add(error);
        }
    }

    private void unstage() {
        staged = 0;
        if (pending != null) {
            pending.reset();
        } else if (uncommon != null) {
            uncommon.unrecordedErrors = null;
        }
    }

    /** The clock, read at most once per burst of engine work (see {@link #now}). */
    private Instant now() {
        Instant at = now;
        if (at == null) {
            at = orchestrator.now();
            now = at;
        }
        return at;
    }

    // ---------------------------------------------------------------- helpers

    private StepContext context(SagaStep<D> step, int attempt) {
        return new StepContext(sagaId, definition.name(), step.name(), attempt, businessKey);
    }

    /**
     * Starts an invocation: calls the interceptors' {@code before()} in order and returns it, to end with
     * {@link #after} (null without interceptors). When one throws, the invocation ends there: that
     * interceptor's and the earlier ones' {@code after()} get its error (the later ones were not called), and
     * an Exception is rethrown wrapped in {@link Rejected} (see {@link #ended}), an Error as it is.
     */
    private SagaInterceptor.Invocation before(SagaInterceptor.Kind kind, StepContext context) throws Rejected {
        SagaInterceptor[] interceptors = orchestrator.interceptors();
        if (interceptors.length == 0) {
            return null;
        }
        SagaInterceptor.Invocation invocation = new SagaInterceptor.Invocation(kind, context);
        for (int k = 0; k < interceptors.length; k++) {
            try {
                interceptors[k].before(invocation);
            } catch (Exception | Error e) {
                for (int j = 0; j <= k; j++) {
                    after(interceptors[j], invocation, e);
                }
                if (e instanceof Exception rejection) {
                    throw new Rejected(rejection);
                }
                throw (Error) e;
            }
        }
        return invocation;
    }

    /** {@link #before} rejected the invocation: it has ended, the interceptors heard of it. */
    private static final class Rejected extends Exception {
        Rejected(Exception cause) {
            super(null, cause, false, false);
        }
    }

    /** What failed an invocation: the rejection's cause when {@link #before} threw, else {@code e} itself. */
    private static Exception rejectedCause(Exception e) {
        return e instanceof Rejected ? (Exception) e.getCause() : e;
    }

    /** Ends an invocation that {@code e} failed (unless {@link #before} rejected it: then it has ended); returns the failure. */
    private Exception ended(SagaInterceptor.Invocation invocation, Exception e) {
        if (e instanceof Rejected) {
            return rejectedCause(e);
        }
        after(invocation, e);
        return e;
    }

    /** Ends an invocation: the interceptors' {@code after()}, with its error or null on success. */
    private void after(SagaInterceptor.Invocation invocation, Throwable error) {
        if (invocation == null) {
            return;
        }
        for (SagaInterceptor interceptor : orchestrator.interceptors()) {
            after(interceptor, invocation, error);
        }
    }

    /**
     * What {@code after()} throws is logged and ignored, an Error such as an AssertionError too: the invocation it
     * ends already happened, and its outcome is the saga's (the listeners' rule). Only an Error that stands for the
     * process dying, or a ThreadDeath, stops the run, as it would in the action itself.
     */
    private static void after(SagaInterceptor interceptor, SagaInterceptor.Invocation invocation, Throwable error) {
        try {
            interceptor.after(invocation, error);
        } catch (VirtualMachineError | SimulatedProcessCrash | ThreadDeath e) { // ThreadDeath: as a listener's
            throw e;
        } catch (Exception e) { // also a checked one (a sneaky throw)
            log.warn("saga interceptor {} failed: {}", interceptor, e.toString());
        } catch (Error e) {
            log.error("saga interceptor {} failed: {}", interceptor, e.toString());
        }
    }

    private Uncommon uncommon() {
        Uncommon state = uncommon;
        if (state == null) {
            state = new Uncommon();
            uncommon = state;
        }
        return state;
    }

    /** Keeps the invocation of step {@code i}'s stage open until {@link #endInvocation} (none without interceptors). */
    private void openInvocation(int i, SagaInterceptor.Invocation invocation) {
        if (invocation == null) {
            return;
        }
        Uncommon state = uncommon();
        if (state.openInvocations == null) {
            state.openInvocations = new SagaInterceptor.Invocation[steps.length];
        }
        state.openInvocations[i] = invocation;
    }

    /** Ends step {@code i}'s open invocation, if any, at most once (it is forgotten before its {@code after()}). */
    private void endInvocation(int i, Throwable error) {
        SagaInterceptor.Invocation[] open = uncommon == null ? null : uncommon.openInvocations;
        if (open == null) {
            return;
        }
        SagaInterceptor.Invocation invocation = open[i];
        if (invocation != null) {
            open[i] = null;
            after(invocation, error);
            now = null; // the interceptors ran: the application's time (the clock may have been read before, see overran)
        }
    }

    /** Allocated when the first remote step is attached: local sagas need none. */
    private boolean[] attached() {
        if (attached == NO_FLAGS) {
            attached = new boolean[steps.length];
        }
        return attached;
    }

    private Scheduler.Cancellable[] timers() {
        if (timers == NO_TIMERS) {
            timers = new Scheduler.Cancellable[steps.length];
        }
        return timers;
    }

    /**
     * Arms step {@code i}'s timer, in place of any it had (cancelled first by the caller). False when the
     * scheduler refused it (closed, say): the run cannot wait for the step, so it stops as on a store failure
     * (its result fails, the saga resumes on recover()) and the caller acts no further.
     */
    private boolean arm(int i, Duration delay, Runnable task) {
        StepTimer timer = new StepTimer(i, task);
        timers()[i] = timer; // before scheduling: a scheduler may run a task due at once before schedule returns
        try {
            timer.scheduled = orchestrator.scheduler().schedule(delay, timer);
            return true;
        } catch (RuntimeException e) {
            if (timers[i] == timer) {
                timers[i] = null;
            }
            log.error("saga {}: the scheduler refused the timer of step {}; the saga stops here and resumes on recover(): {}",
                    sagaId, steps[i].name(), e.toString());
            stopHere(new SagaException(sagaId, steps[i].name(), "scheduler failed: " + e.getMessage(), e, true));
            return false;
        }
    }

    /**
     * A step's timer, in its slot of {@link #timers} until it fires or is cancelled. On a real scheduler a cancel
     * can lose the race with the firing (the scheduler's thread took the task and waits for the run's lock): the
     * task then runs only if the slot still holds its timer, so that a stale timer neither acts nor clears the
     * slot, which holds the step's current timer (a retry's, the next attempt's timeout). A cleared slot would
     * let the run arm a second retry timer and lose the handle it cancels its current timer with.
     */
    private final class StepTimer implements Scheduler.Cancellable, Runnable {
        private final int step;
        private final Runnable task;
        /** Set under the run's lock once scheduled. */
        private Scheduler.Cancellable scheduled;

        StepTimer(int step, Runnable task) {
            this.step = step;
            this.task = task;
        }

        @Override
        public void run() {
            synchronized (SagaRun.this) {
                if (timers[step] != this) {
                    if (log.isDebugEnabled()) { // as for a late completion
                        debugOutsideADrive("saga {}: ignoring a cancelled timer of step {}", sagaId, steps[step].name());
                    }
                    return;
                }
                timers[step] = null;
                task.run();
            }
        }

        @Override
        public void cancel() {
            if (scheduled != null) {
                scheduled.cancel();
            }
        }
    }

    private void cancelTimer(int i) {
        if (timers == NO_TIMERS) {
            return;
        }
        Scheduler.Cancellable timer = timers[i];
        if (timer != null) {
            timers[i] = null;
            timer.cancel();
        }
    }
}
