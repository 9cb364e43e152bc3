package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An action or compensation that throws an {@link Error} (not an Exception) is not retried: the Error
 * propagates and the run stops as if the process died there (SagaOrchestrator: "an Error ..."). The store
 * keeps the step in flight, as after a crash, so recover() in the same process resumes the saga; the run
 * must not stay registered, wedged with a step marked in flight forever.
 */
class ErrorInUserCodeTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> undone = new CopyOnWriteArrayList<>();
    private final AtomicInteger calls = new AtomicInteger();

    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("error-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").action((d, ctx) -> {
                    if (calls.incrementAndGet() == 1) {
                        throw new AssertionError("bug in the action");
                    }
                    return new Data("booked");
                })
                .build();
    }

    private void anErrorStopsTheRunAndRecoverResumesIt(SagaOrchestrator.Builder builder) {
        SagaDefinition<Data> definition = definition();
        SagaOrchestrator orchestrator = builder.store(store).scheduler(scheduler).register(definition).build();

        AssertionError error = assertThrows(AssertionError.class,
                () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals("bug in the action", error.getMessage());
        assertEquals(StepStatus.RUNNING, store.find("saga-1").orElseThrow().step("book").orElseThrow().status());
        // No longer driven here: "call recover() first", not a result that never completes.
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(2, calls.get());
        orchestrator.close();
    }

    @Test
    void anErrorInAStraightRunsActionStopsTheRunAndRecoverResumesIt() {
        anErrorStopsTheRunAndRecoverResumesIt(SagaOrchestrator.builder());
    }

    @Test
    void anErrorInAnObservedRunsActionStopsTheRunAndRecoverResumesIt() {
        anErrorStopsTheRunAndRecoverResumesIt(SagaOrchestrator.builder().listener(new SagaListener() {
        }));
    }

    @Test
    void anErrorInACompensationStopsTheRunAndRecoverResumesIt() {
        AtomicInteger compensations = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("error-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    if (compensations.incrementAndGet() == 1) {
                        throw new StackOverflowError();
                    }
                    undone.add("reserve");
                })
                .step("book").action((d, ctx) -> {
                    throw new IllegalStateException("sold out");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition).build();

        assertThrows(StackOverflowError.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
        assertEquals(StepStatus.COMPENSATING, store.find("saga-1").orElseThrow().step("reserve").orElseThrow().status());
        assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

        assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("reserve"), undone);
        orchestrator.close();
    }
}
