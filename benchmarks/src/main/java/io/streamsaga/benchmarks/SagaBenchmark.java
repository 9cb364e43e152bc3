package io.streamsaga.benchmarks;

import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.StepContext;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.time.Scheduler;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A 3-step local saga on the in-memory store (each step increments a counter in a
 * {@link ConcurrentHashMap}, each compensation decrements it), succeeding or failing at step 3 (two
 * compensations), against the floor it replaces: a hand-written {@code try/catch} with a {@link Deque}
 * of compensation lambdas. The saga runs with a store that keeps neither history nor finished instances
 * (a retention of zero); every transition is still written before the engine acts on it.
 *
 * <p>A second floor, {@code storedFloor*}, drives the same definitions by hand with the engine's
 * guarantees and nothing else: before each act a versioned {@link SagaInstance} written to the same kind
 * of store (the writes the engine makes: 4 for a success, 6 for a compensation), a registry entry while
 * the saga runs, a {@link StepContext} per call and a completed result. The gap between it and
 * {@code saga*} is the engine's own bookkeeping; the gap between it and {@code floor*} is the price of
 * the guarantees.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class SagaBenchmark {

    /** The saga data. */
    public record Data(long id) {
    }

    /** Thrown by step 3 in the failure variants; preallocated, without a stack trace, for every variant alike. */
    static final class Declined extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Declined() {
            super("declined", null, false, false);
        }
    }

    static final RuntimeException DECLINED = new Declined();

    final ConcurrentHashMap<String, Long> counters = new ConcurrentHashMap<>();
    private Scheduler scheduler;
    private SagaOrchestrator orchestrator;
    private SagaDefinition<Data> success;
    private SagaDefinition<Data> failure;
    private final Data data = new Data(42);
    /** The stored floor's store, registry, ids and the step lists it writes (the engine shares such lists too). */
    private final InMemorySagaStore floorStore = new InMemorySagaStore(false, false);
    private final ConcurrentHashMap<String, Object> floorRuns = new ConcurrentHashMap<>();
    private final AtomicLong floorIds = new AtomicLong();
    private final Instant floorTime = Instant.now();
    private List<StepState>[] forward;
    private List<StepState>[] compensation;

    @Setup
    public void setUp() {
        scheduler = Scheduler.system();
        orchestrator = SagaOrchestrator.builder()
                .store(new InMemorySagaStore(false, false))
                .scheduler(scheduler)
                .build();
        success = definition("three-steps", false);
        failure = definition("three-steps-failing", true);
        forward = stepLists();
    }

    /**
     * Index k < 3: steps before k succeeded, step k running; 3: all succeeded. {@link #compensation}: step 3
     * failed and step 2 compensating; step 2 compensated and step 1 compensating; both compensated.
     */
    @SuppressWarnings("unchecked")
    private List<StepState>[] stepLists() {
        StepState[] pending = new StepState[3];
        StepState[] running = new StepState[3];
        StepState[] succeeded = new StepState[3];
        String[] names = {"one", "two", "three"};
        for (int i = 0; i < 3; i++) {
            pending[i] = StepState.pending(names[i]);
            running[i] = new StepState(names[i], StepStatus.RUNNING, 1, 0, null);
            succeeded[i] = running[i].with(StepStatus.SUCCEEDED);
        }
        StepState failed = running[2].with(StepStatus.FAILED);
        StepState compensating0 = succeeded[0].nextCompensationAttempt();
        StepState compensating1 = succeeded[1].nextCompensationAttempt();
        compensation = new List[] {
                List.of(succeeded[0], compensating1, failed),
                List.of(compensating0, compensating1.with(StepStatus.COMPENSATED), failed),
                List.of(compensating0.with(StepStatus.COMPENSATED), compensating1.with(StepStatus.COMPENSATED), failed)};
        return new List[] {
                List.of(running[0], pending[1], pending[2]),
                List.of(succeeded[0], running[1], pending[2]),
                List.of(succeeded[0], succeeded[1], running[2]),
                List.of(succeeded[0], succeeded[1], succeeded[2])};
    }

    @TearDown
    public void tearDown() {
        orchestrator.close();
        scheduler.close();
    }

    private SagaDefinition<Data> definition(String name, boolean failAtThree) {
        return SagaDefinition.builder(name, Data.class)
                .step("one").action((d, ctx) -> inc("one", d)).compensation((d, ctx) -> dec("one"))
                .step("two").action((d, ctx) -> inc("two", d)).compensation((d, ctx) -> dec("two"))
                .step("three").action((d, ctx) -> {
                    if (failAtThree) {
                        throw DECLINED;
                    }
                    return inc("three", d);
                }).compensation((d, ctx) -> dec("three"))
                .build();
    }

    private Data inc(String step, Data d) {
        counters.merge(step, 1L, Long::sum);
        return d;
    }

    private void dec(String step) {
        counters.merge(step, -1L, Long::sum);
    }

    @Benchmark
    public SagaResult<Data> sagaSuccess() {
        return orchestrator.start(success, data).toCompletableFuture().join();
    }

    @Benchmark
    public SagaResult<Data> sagaCompensate() {
        return orchestrator.start(failure, data).toCompletableFuture().join();
    }

    @Benchmark
    public boolean floorSuccess() {
        return floor(false);
    }

    @Benchmark
    public boolean floorCompensate() {
        return floor(true);
    }

    @Benchmark
    public SagaResult<Data> storedFloorSuccess() throws Exception {
        return storedFloor(success).join();
    }

    @Benchmark
    public SagaResult<Data> storedFloorCompensate() throws Exception {
        return storedFloor(failure).join();
    }

    /** The definition's steps driven by hand, each act preceded by a versioned write (see the class comment). */
    private CompletableFuture<SagaResult<Data>> storedFloor(SagaDefinition<Data> definition) throws Exception {
        String sagaId = "floor-" + floorIds.incrementAndGet();
        CompletableFuture<SagaResult<Data>> result = new CompletableFuture<>();
        floorRuns.putIfAbsent(sagaId, result);
        Data current = data;
        int done = 0;
        try {
            for (; done < 3; done++) {
                write(definition, sagaId, done + 1, SagaStatus.RUNNING, forward[done], current, null);
                SagaStep<Data> step = definition.steps().get(done);
                current = step.action().execute(current, new StepContext(sagaId, definition.name(), step.name(), 1, null));
            }
            write(definition, sagaId, 4, SagaStatus.COMPLETED, forward[3], current, null);
            result.complete(new SagaResult<>(sagaId, SagaOutcome.COMPLETED, current, null, null, null));
        } catch (Exception e) {
            SagaFailure failed = SagaFailure.of(definition.steps().get(done).name(), e);
            for (int c = done - 1, k = 0; c >= 0; c--, k++) {
                write(definition, sagaId, 4 + k, SagaStatus.COMPENSATING, compensation[k], current, failed);
                SagaStep<Data> step = definition.steps().get(c);
                step.compensation().compensate(current, new StepContext(sagaId, definition.name(), step.name(), 1, null));
            }
            write(definition, sagaId, 4 + done, SagaStatus.COMPENSATED, compensation[done], current, failed);
            result.complete(new SagaResult<>(sagaId, SagaOutcome.COMPENSATED, current, failed, null, e));
        }
        floorRuns.remove(sagaId, result);
        return result;
    }

    private void write(SagaDefinition<Data> definition, String sagaId, long version, SagaStatus status,
                       List<StepState> steps, Data current, SagaFailure failed) {
        SagaInstance instance = new SagaInstance(sagaId, definition.name(), definition.version(), null,
                definition.dataType(), current, status, steps, failed, null, floorTime, floorTime, version, null);
        if (version == 1) {
            floorStore.insertAll(instance, List.of());
        } else {
            floorStore.updateAll(instance, List.of());
        }
    }

    /** The source's OrderSaga shape by hand: push a compensation after each step, unwind in reverse on failure. */
    private boolean floor(boolean failAtThree) {
        Deque<Runnable> compensations = new ArrayDeque<>();
        try {
            inc("one", data);
            compensations.push(() -> dec("one"));
            inc("two", data);
            compensations.push(() -> dec("two"));
            if (failAtThree) {
                throw DECLINED;
            }
            inc("three", data);
            compensations.push(() -> dec("three"));
            return true;
        } catch (RuntimeException e) {
            while (!compensations.isEmpty()) {
                compensations.pop().run();
            }
            return false;
        }
    }
}
