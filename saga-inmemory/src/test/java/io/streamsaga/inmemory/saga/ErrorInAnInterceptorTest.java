package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One rule for what the application's hooks throw (SagaInterceptor, SagaListener): what an interceptor's
 * {@code after()} throws is logged and ignored, an Error such as an AssertionError too, as a listener's is: the
 * invocation it ends already happened, and its outcome is the saga's. Only an Error that stands for the process
 * dying (a VirtualMachineError, a test's SimulatedProcessCrash) stops the run there, as it would in the action.
 */
class ErrorInAnInterceptorTest {
    record Data(String id) {
    }

    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> ran = new CopyOnWriteArrayList<>();

    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("intercepted-saga", Data.class)
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

    private SagaOrchestrator orchestrator(SagaDefinition<?> definition, SagaInterceptor interceptor) {
        return SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler()).interceptor(interceptor)
                .register(definition).build();
    }

    /** Throws {@code error} from the after() of step {@code step}'s action (once when {@code once}). */
    private static SagaInterceptor throwingAfter(String step, Error error, boolean once) {
        AtomicBoolean thrown = new AtomicBoolean();
        return new SagaInterceptor() {
            @Override
            public void after(Invocation invocation, Throwable failure) {
                if (invocation.context().step().equals(step) && (!once || thrown.compareAndSet(false, true))) {
                    throw error;
                }
            }
        };
    }

    @Test
    void anAssertionErrorInAnInterceptorsAfterIsLoggedAndTheSagaGoesOn() {
        SagaDefinition<Data> definition = definition();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new AssertionError("bug in a tracing interceptor"), false))) {
            SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPLETED, result.outcome());
            assertEquals(List.of("reserve", "book"), ran, "each action ran once: the outcome of reserve was kept");
        }
    }

    @Test
    void anAssertionErrorInTheAfterOfAnAsynchronousActionDoesNotLoseItsOutcome() {
        CompletableFuture<Data> reserved = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("intercepted-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> {
                    ran.add("reserve");
                    return reserved;
                })
                .step("book").action((d, ctx) -> {
                    ran.add("book");
                    return d;
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new AssertionError("bug in a tracing interceptor"), false))) {
            CompletionStage<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"));

            reserved.complete(new Data("a")); // after() runs on this thread, in the stage's dependent

            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(SagaOutcome.COMPLETED, result.toCompletableFuture().join().outcome());
            assertEquals(List.of("reserve", "book"), ran);
        }
    }

    @Test
    void aSimulatedCrashInAnInterceptorsAfterStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = definition();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new SimulatedCrash("the process died in an interceptor"), true))) {
            assertThrows(SimulatedCrash.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
            assertEquals(List.of("reserve"), ran);
            assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

            assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("reserve", "reserve", "book"), ran, "its outcome was never stored: it runs again");
        }
    }
}
