package io.streamsaga.benchmarks;

import org.axonframework.eventhandling.GenericEventMessage;
import org.axonframework.eventhandling.SimpleEventBus;
import org.axonframework.eventhandling.SubscribingEventProcessor;
import org.axonframework.modelling.saga.AnnotatedSagaManager;
import org.axonframework.modelling.saga.SagaEventHandler;
import org.axonframework.modelling.saga.SagaLifecycle;
import org.axonframework.modelling.saga.StartSaga;
import org.axonframework.modelling.saga.repository.AnnotatedSagaRepository;
import org.axonframework.modelling.saga.repository.inmemory.InMemorySagaStore;
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
 * The same 3-step saga as {@link SagaBenchmark} as an Axon 4.13 saga: an {@link AnnotatedSagaManager} over
 * Axon's {@link InMemorySagaStore}, fed by a {@link SimpleEventBus} through a subscribing processor. Each
 * published {@code SagaRequested} event starts a saga instance that runs the three steps (counters in a
 * {@link ConcurrentHashMap}), compensates in reverse when step 3 fails, and ends. What is measured is Axon's
 * per-saga machinery (event message, unit of work, saga creation, association, store, end).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 10, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class AxonSagaBenchmark {

    /** Starts one saga; {@code fail} makes its step 3 throw. */
    public record SagaRequested(String sagaId, boolean fail) {
    }

    /**
     * Axon creates saga instances reflectively with a no-argument constructor, so the counters reach them
     * through this holder (benchmark code only; one JMH fork, one thread).
     */
    static volatile ConcurrentHashMap<String, Long> counters = new ConcurrentHashMap<>();

    /** The saga: steps and compensations as in the other variants. */
    public static class ThreeStepSaga {
        @StartSaga
        @SagaEventHandler(associationProperty = "sagaId")
        public void on(SagaRequested event) {
            Deque<Runnable> compensations = new ArrayDeque<>();
            try {
                counters.merge("one", 1L, Long::sum);
                compensations.push(() -> counters.merge("one", -1L, Long::sum));
                counters.merge("two", 1L, Long::sum);
                compensations.push(() -> counters.merge("two", -1L, Long::sum));
                if (event.fail()) {
                    throw SagaBenchmark.DECLINED;
                }
                counters.merge("three", 1L, Long::sum);
                compensations.push(() -> counters.merge("three", -1L, Long::sum));
            } catch (RuntimeException e) {
                while (!compensations.isEmpty()) {
                    compensations.pop().run();
                }
            }
            SagaLifecycle.end();
        }
    }

    private SimpleEventBus bus;
    private SubscribingEventProcessor processor;
    private long sequence;

    @Setup
    public void setUp() {
        counters = new ConcurrentHashMap<>();
        bus = SimpleEventBus.builder().build();
        AnnotatedSagaRepository<ThreeStepSaga> repository = AnnotatedSagaRepository.<ThreeStepSaga>builder()
                .sagaType(ThreeStepSaga.class)
                .sagaStore(new InMemorySagaStore())
                .build();
        AnnotatedSagaManager<ThreeStepSaga> manager = AnnotatedSagaManager.<ThreeStepSaga>builder()
                .sagaType(ThreeStepSaga.class)
                .sagaRepository(repository)
                .build();
        processor = SubscribingEventProcessor.builder()
                .name("three-step-saga")
                .eventHandlerInvoker(manager)
                .messageSource(bus)
                .build();
        processor.start();
    }

    @TearDown
    public void tearDown() {
        processor.shutDown();
    }

    @Benchmark
    public long axonSuccess() {
        bus.publish(GenericEventMessage.asEventMessage(new SagaRequested("s-" + ++sequence, false)));
        return sequence;
    }

    @Benchmark
    public long axonCompensate() {
        bus.publish(GenericEventMessage.asEventMessage(new SagaRequested("s-" + ++sequence, true)));
        return sequence;
    }
}
