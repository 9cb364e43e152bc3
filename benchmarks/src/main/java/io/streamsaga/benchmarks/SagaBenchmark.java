package io.streamsaga.benchmarks;

import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
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

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A 3-step local saga on the in-memory store (each step increments a counter in a
 * {@link ConcurrentHashMap}, each compensation decrements it), succeeding or failing at step 3 (two
 * compensations), against the floor it replaces: a hand-written {@code try/catch} with a {@link Deque}
 * of compensation lambdas. The saga runs with a store that keeps neither history nor finished instances
 * (a retention of zero); every transition is still written before the engine acts on it.
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

    @Setup
    public void setUp() {
        scheduler = Scheduler.system();
        orchestrator = SagaOrchestrator.builder()
                .store(new InMemorySagaStore(false, false))
                .scheduler(scheduler)
                .build();
        success = definition("three-steps", false);
        failure = definition("three-steps-failing", true);
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
