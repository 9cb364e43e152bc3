package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * "A listener that throws is logged and ignored" (SagaListener): also an Error such as an AssertionError, so
 * a listener's bug does not change the saga's course. Only an Error that stands for the process dying (a
 * VirtualMachineError, or a test's SimulatedProcessCrash) stops the run as any Error does, and then the run
 * must not stay registered (also when it comes from onStarted, before the run is driven).
 */
class ErrorInAListenerTest {
    record Data(String id) {
    }

    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> ran = new CopyOnWriteArrayList<>();

    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("listened-saga", Data.class)
                .step("reserve").action((d, ctx) -> {
                    ran.add("reserve");
                    return d;
                })
                .step("book").action((d, ctx) -> {
                    ran.add("book");
                    return d;
                })
                .build();
    }

    private SagaOrchestrator orchestrator(SagaDefinition<Data> definition, SagaListener listener) {
        return SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler()).listener(listener)
                .register(definition).build();
    }

    @Test
    void anAssertionErrorInAListenerIsLoggedAndTheSagaGoesOn() {
        SagaDefinition<Data> definition = definition();
        SagaOrchestrator orchestrator = orchestrator(definition, new SagaListener() {
            @Override
            public void onStarted(SagaInstance instance) {
                throw new AssertionError("bug in onStarted");
            }

            @Override
            public void onStepCompleted(SagaInstance instance, String step) {
                throw new AssertionError("bug in onStepCompleted");
            }
        });

        assertEquals(SagaOutcome.COMPLETED, orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture().join().outcome());
        assertEquals(List.of("reserve", "book"), ran);
        orchestrator.close();
    }

    @Test
    void aSimulatedCrashInOnStepCompletedStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = definition();
        AtomicBoolean crashed = new AtomicBoolean();
        SagaOrchestrator orchestrator = orchestrator(definition, new SagaListener() {
            @Override
            public void onStepCompleted(SagaInstance instance, String step) {
                if (crashed.compareAndSet(false, true)) {
                    throw new SimulatedCrash("the process died in a listener");
                }
            }
        });

        assertThrows(SimulatedCrash.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals(List.of("reserve"), ran);
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("reserve", "book"), ran);
        orchestrator.close();
    }

    @Test
    void aSimulatedCrashInOnStartedStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = definition();
        AtomicBoolean crashed = new AtomicBoolean();
        SagaOrchestrator orchestrator = orchestrator(definition, new SagaListener() {
            @Override
            public void onStarted(SagaInstance instance) {
                if (crashed.compareAndSet(false, true)) {
                    throw new SimulatedCrash("the process died in a listener");
                }
            }
        });

        assertThrows(SimulatedCrash.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals(List.of(), ran);
        // No longer driven here: "call recover() first", not a result that never completes.
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("reserve", "book"), ran);
        orchestrator.close();
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aThreadDeathInOnStepCompletedStopsTheRunAndRecoverResumesIt() {
        // ThreadDeath asks the thread to die; whoever catches it must rethrow it (its Javadoc). Logged as a listener's
        // bug and ignored, the stopped thread drove the saga on to its end.
        SagaDefinition<Data> definition = definition();
        AtomicBoolean stopped = new AtomicBoolean();
        SagaOrchestrator orchestrator = orchestrator(definition, new SagaListener() {
            @Override
            public void onStepCompleted(SagaInstance instance, String step) {
                if (stopped.compareAndSet(false, true)) {
                    throw new ThreadDeath();
                }
            }
        });

        assertThrows(ThreadDeath.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals(List.of("reserve"), ran);
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("reserve", "book"), ran);
        orchestrator.close();
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }

    @Test
    void aCheckedExceptionFromAListenerIsLoggedAndTheSagaGoesOn() {
        // A listener written in Kotlin (or with a sneaky throw) can throw a checked exception.
        SagaDefinition<Data> definition = definition();
        SagaOrchestrator orchestrator = orchestrator(definition, new SagaListener() {
            @Override
            public void onStepCompleted(SagaInstance instance, String step) {
                sneakyThrow(new java.io.IOException("audit log unreachable"));
            }
        });

        assertEquals(SagaOutcome.COMPLETED, orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture().join().outcome());
        assertEquals(List.of("reserve", "book"), ran);
        orchestrator.close();
    }
}
