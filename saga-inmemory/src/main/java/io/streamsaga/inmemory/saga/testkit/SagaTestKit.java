package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.saga.SagaDataUpcaster;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaStatus;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * Given/when/expect tests for sagas on the in-memory bus and store with a virtual clock (timeouts and
 * backoff take no real time). Inject failures into any step or compensation; assert what ran, in which
 * order. No JUnit dependency: expectations throw {@link AssertionError}.
 *
 * <pre>{@code
 * SagaTestKit.given(env -> new OrderServices(), OrderSaga::definition, order)
 *     .failStep("process-payment", FailureMode.always())
 *     .whenRun()
 *     .expectCompensated()
 *     .expectCompensations("reserve-inventory", "create-order");
 * }</pre>
 *
 * Each {@code whenRun()} builds a fresh environment and fixture. The kit settles what its bus, virtual
 * clock and executor drive: the stages of asynchronous actions and compensations complete at once, from a
 * participant's handler, from a task on {@link SagaTestEnvironment#scheduler()}, or on another thread through
 * {@link SagaTestEnvironment#executor()} ({@code CompletableFuture.supplyAsync(work, env.executor())}), whose
 * tasks the kit waits for before it delivers, moves the clock or returns: such work takes no virtual time. (A
 * thread the kit does not know of, such as {@code supplyAsync}'s common pool, is not waited for: its stage may
 * complete after {@code whenRun()} returned, or after the kit jumped the clock past the step's timeout.) The
 * kit closes what it created for a run (orchestrator, bus, transport, clock, executor) once the saga is
 * completed, compensated or resolved when {@code whenRun()}, {@code whenStarted()} or a later call of the report
 * returns, or when one of them fails; a run that needs attention or is still running stays open until then
 * (a call the orchestrator refuses for the saga's state leaves it open), or until its report is
 * {@linkplain SagaRunReport#close() closed} (see {@link SagaRunReport}). To test versioned definitions and data
 * upcasters, register the upcasters with {@link #dataUpcaster} and upgrade a run still going with
 * {@link SagaRunReport#upgradeTo}. Not thread-safe.
 *
 * @param <F> the fixture type: the application services a run uses (fresh per run)
 * @param <D> the saga data type
 */
public final class SagaTestKit<F, D> {
    /** The seed of the retry jitter when none is set ({@link #seed}). */
    static final long DEFAULT_SEED = 0;
    private final Function<SagaTestEnvironment, F> fixture;
    private final Function<F, SagaDefinition<D>> definition;
    private final D data;
    private TypeRegistry types = TypeRegistry.empty();
    private final Map<String, FailureMode> stepFailures = new LinkedHashMap<>();
    private final Map<String, FailureMode> compensationFailures = new LinkedHashMap<>();
    private SettleLimits limits = SettleLimits.DEFAULTS;
    private final Map<Integer, SagaDataUpcaster> upcasters = new LinkedHashMap<>();
    private long seed = DEFAULT_SEED;
    private boolean logContext;

    private SagaTestKit(Function<SagaTestEnvironment, F> fixture, Function<F, SagaDefinition<D>> definition, D data) {
        this.fixture = Objects.requireNonNull(fixture, "fixture");
        this.definition = Objects.requireNonNull(definition, "definition");
        this.data = Objects.requireNonNull(data, "data");
    }

    /** A definition with no per-run state. */
    public static <D> SagaTestKit<Void, D> given(SagaDefinition<D> definition, D data) {
        return new SagaTestKit<>(env -> null, f -> definition, data);
    }

    /**
     * A definition over a fixture created per run: {@code fixture} builds the application services (and
     * subscribes remote participants on the environment's bus); {@code definition} builds the saga on them.
     */
    public static <F, D> SagaTestKit<F, D> given(Function<SagaTestEnvironment, F> fixture,
                                                 Function<F, SagaDefinition<D>> definition, D data) {
        return new SagaTestKit<>(fixture, definition, data);
    }

    /** The type registry of the bus (commands and replies of remote steps). */
    public SagaTestKit<F, D> types(TypeRegistry types) {
        this.types = Objects.requireNonNull(types, "types");
        return this;
    }

    /**
     * How many settling rounds the kit runs at one virtual instant, the clock not moving, before it takes the run
     * for a livelock and fails the call that drives it ({@link AssertionError}, naming the instant and the topics
     * and message types delivered at it; the run closed). Each message delivered is a round (once per subscription
     * it is handed to), and so is each timer run: handlers that answer each other for ever, and a task that
     * reschedules itself with no delay, are both caught. 100,000 by default: a test whose burst at one instant
     * ends but is larger (a fan-out of 200,000 events) raises it.
     *
     * @throws ConfigurationException when {@code rounds} is below 1
     */
    public SagaTestKit<F, D> maxRoundsAtOneInstant(int rounds) {
        limits = new SettleLimits(rounds, limits.timersToSettle());
        return this;
    }

    /**
     * How many timers {@link SagaRunReport#settle()} (and {@code whenRun()}) runs before it takes the run for one
     * that never settles (a timer that repeats for ever, a step retried for ever) and fails ({@link AssertionError},
     * the run closed); {@link SagaRunReport#advance} runs any number of timers up to its instant. 100,000 by
     * default.
     *
     * @throws ConfigurationException when {@code timers} is below 1
     */
    public SagaTestKit<F, D> maxTimersToSettle(int timers) {
        limits = new SettleLimits(limits.roundsAtOneInstant(), timers);
        return this;
    }

    /**
     * The seed of the retry policies' jitter in every run ({@link io.streamsaga.saga.SagaOrchestrator.Builder#retryJitter}
     * with a {@code java.util.Random} seeded from {@code seed}, mixed first so that nearby seeds draw different
     * delays: not {@code new Random(seed)}'s sequence; one sequence for the run's orchestrators, the one recovering
     * after a crash included; and {@link io.streamsaga.bus.EventBus.Builder#retryJitter} on the environment's bus, a
     * sequence of its own, for a participant subscribed with a retry policy): each run draws the same delays, so a saga
     * whose retry timers race another timer (a reply from a participant's timer or its handler's retry, another
     * member's completion) runs the same way every time. 0 by default; another seed
     * explores other jittered delays, and the crash explorer names the seed of an exploration that fails.
     */
    public SagaTestKit<F, D> seed(long seed) {
        this.seed = seed;
        return this;
    }

    /**
     * Builds each run's orchestrator and bus with {@code logContext(logContext)}
     * ({@link io.streamsaga.saga.SagaOrchestrator.Builder#logContext},
     * {@link io.streamsaga.bus.EventBus.Builder#logContext}):
     * the saga's keys, and a delivered message's, in slf4j's MDC while the application's code runs, so that a test can
     * check what its actions, handlers and listeners log with them (docs/sagas.md, "Log correlation"). Off by default.
     */
    public SagaTestKit<F, D> logContext(boolean logContext) {
        this.logContext = logContext;
        return this;
    }

    /**
     * Registers an upcaster of the saga's data from definition version {@code fromVersion} to the next on every
     * orchestrator of the run, under the saga's name, as {@link io.streamsaga.saga.SagaOrchestrator.Builder#dataUpcaster}
     * does: with it, {@link SagaRunReport#upgradeTo} migrates a saga started under {@code fromVersion} (one for each
     * version on the way, to skip several). A second one for the same version replaces the first.
     *
     * @throws ConfigurationException when {@code fromVersion} is below 1
     */
    public SagaTestKit<F, D> dataUpcaster(int fromVersion, SagaDataUpcaster upcaster) {
        ConfigurationException.require(fromVersion >= 1, "fromVersion must be 1 or more, but was %s", fromVersion);
        upcasters.put(fromVersion, Objects.requireNonNull(upcaster, "upcaster"));
        return this;
    }

    /**
     * Fails the step's action (or the handling of its reply) as {@code mode} says; a step of the definition the run
     * starts with (checked when the run is made). One only a newer version has is failed by
     * {@link SagaRunReport#upgradeTo}'s {@link FailureInjection}s.
     */
    public SagaTestKit<F, D> failStep(String step, FailureMode mode) {
        stepFailures.put(Objects.requireNonNull(step, "step"), Objects.requireNonNull(mode, "mode"));
        return this;
    }

    /**
     * Fails the step's compensation as {@code mode} says (a remote compensation: the handling of its reply, after
     * the participant undid; the retry sends the command again, for the participant to dedupe by its key).
     */
    public SagaTestKit<F, D> failCompensation(String step, FailureMode mode) {
        compensationFailures.put(Objects.requireNonNull(step, "step"), Objects.requireNonNull(mode, "mode"));
        return this;
    }

    /** Starts the saga and settles it: every message delivered, every timer run. */
    public SagaRunReport<F, D> whenRun() {
        return new SagaRunReport<>(types, fixture, definition, stepFailures, compensationFailures, LostMessages.NONE,
                limits, seed, logContext, upcasters, 0, false, null).start(data, true);
    }

    /**
     * Starts the saga and settles what is due at the current virtual instant, as {@link SagaRunReport#settle()}
     * does, without moving the clock (to cancel it, or {@linkplain SagaRunReport#advance advance} it, for
     * instance): the messages are delivered, the tasks of the environment's executor end, and the timers due now
     * (one scheduled with no delay: a stage completed from a task on the scheduler, what it leads to) run, one at a
     * time; a timer due later is left pending. A saga that finished meanwhile (its steps ended while it started) is
     * finished like a settled one: its run is closed.
     */
    public SagaRunReport<F, D> whenStarted() {
        return new SagaRunReport<>(types, fixture, definition, stepFailures, compensationFailures, LostMessages.NONE,
                limits, seed, logContext, upcasters, 0, false, null).start(data, false);
    }

    /** A run of the crash explorer: {@code lost}, the commands and replies it loses. */
    SagaRunReport<F, D> run(Map<String, FailureMode> steps, Map<String, FailureMode> compensations, LostMessages lost,
                            int crashAt, boolean crashBeforeWrite) {
        return new SagaRunReport<>(types, fixture, definition, steps, compensations, lost, limits, seed, logContext,
                upcasters, crashAt, crashBeforeWrite, null).start(data, true);
    }

    /**
     * {@code whenStarted().cancel()} with a crash point: the run, or null when the saga cannot be cancelled once
     * started (it finished while it started, or is past its pivot: the orchestrator refused), its run then closed.
     */
    SagaRunReport<F, D> runCancelled(int crashAt, boolean crashBeforeWrite) {
        SagaRunReport<F, D> report = new SagaRunReport<>(types, fixture, definition, Map.of(), Map.of(),
                LostMessages.NONE, limits, seed, logContext, upcasters, crashAt, crashBeforeWrite, null)
                .start(data, false);
        if (report.isClosed() || report.status() != SagaStatus.RUNNING) {
            report.close();
            return null;
        }
        try {
            return report.cancelAfterStart();
        } catch (SagaException refused) {
            report.close();
            return null;
        }
    }

    /**
     * A run cancelled by the crash explorer once {@code step}'s success is stored (from a listener, on the thread
     * that drives the saga), with a crash point; settled. Whether the cancel was accepted:
     * {@link SagaRunReport#cancelAccepted()}.
     */
    SagaRunReport<F, D> runCancelledAfter(String step, int crashAt, boolean crashBeforeWrite) {
        return new SagaRunReport<>(types, fixture, definition, Map.of(), Map.of(), LostMessages.NONE, limits, seed,
                logContext, upcasters, crashAt, crashBeforeWrite, step).start(data, true);
    }

    long seed() {
        return seed;
    }

    TypeRegistry types() {
        return types;
    }

    Function<SagaTestEnvironment, F> fixture() {
        return fixture;
    }

    Function<F, SagaDefinition<D>> definition() {
        return definition;
    }

    D data() {
        return data;
    }
}
