package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Application code that breaks its contract fails its step with a clear error; the saga does not hang. */
class BadUserCodeTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> undone = new CopyOnWriteArrayList<>();

    @Test
    void anAsyncActionReturningNullInsteadOfAStageFailsItsStepAndTheSagaCompensates() {
        SagaDefinition<Data> definition = SagaDefinition.builder("null-stage-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .step("book").asyncAction((d, ctx) -> null)
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();

        assertTrue(result.isDone(), "the saga hangs with its step RUNNING");
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertTrue(result.join().failure().message().contains("returned null"), result.join().failure().toString());
        assertEquals(List.of("reserve"), undone);
        orchestrator.close();
    }

    @Test
    void aMergeThatThrowsFailsTheMemberAndTheSagaCompensatesInsteadOfHanging() throws Exception {
        SagaDefinition<Data> definition = SagaDefinition.builder("bad-merge-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .parallel(group -> {
                    group.step("hotel").action((d, ctx) -> new Data("hotel")).compensation((d, ctx) -> undone.add("hotel"));
                    group.step("flight").action((d, ctx) -> new Data("flight")).compensation((d, ctx) -> undone.add("flight"));
                    group.merge((current, member) -> {
                        throw new IllegalStateException("conflicting member results");
                    });
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();

        try {
            result.get(10, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("the saga hangs: " + store.find("saga-1").orElseThrow(), e);
        }
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertTrue(undone.contains("hotel"), undone.toString()); // it acted (the flight may not have started)
        assertEquals("reserve", undone.get(undone.size() - 1));
        orchestrator.close();
    }

    @Test
    void aNullOrBlankSagaIdIsRefusedWithAClearError() {
        SagaDefinition<Data> definition = SagaDefinition.builder("id-saga", Data.class).step("a").action((d, ctx) -> d).build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();

        io.streamsaga.ConfigurationException nullId = org.junit.jupiter.api.Assertions.assertThrows(
                io.streamsaga.ConfigurationException.class, () -> orchestrator.start(definition, null, null, new Data("a")));
        assertTrue(nullId.getMessage().contains("saga id"), nullId.getMessage());
        org.junit.jupiter.api.Assertions.assertThrows(io.streamsaga.ConfigurationException.class,
                () -> orchestrator.start(definition, " ", null, new Data("a")));
        assertEquals(0, store.size());
        orchestrator.close();
    }

    @Test
    void aNullDefinitionOrStatusIsRefusedWithAClearErrorInsteadOfANullPointerFromTheEngine() {
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).build();

        for (org.junit.jupiter.api.function.Executable call : List.<org.junit.jupiter.api.function.Executable>of(
                () -> orchestrator.start(null, new Data("a")),
                () -> orchestrator.start(null, "order-1", new Data("a")),
                () -> orchestrator.start(null, "saga-1", "order-1", new Data("a")))) {
            io.streamsaga.ConfigurationException refused = org.junit.jupiter.api.Assertions.assertThrows(
                    io.streamsaga.ConfigurationException.class, call);
            assertTrue(refused.getMessage().contains("definition"), refused.getMessage());
        }
        io.streamsaga.ConfigurationException status = org.junit.jupiter.api.Assertions.assertThrows(
                io.streamsaga.ConfigurationException.class, () -> orchestrator.findByStatus(SagaStatus.RUNNING, null));
        assertTrue(status.getMessage().contains("status"), status.getMessage());
        assertEquals(0, store.size());
        orchestrator.close();
    }
}
