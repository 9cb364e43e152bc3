package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A saga whose every step succeeded completes (docs/sagas.md: RUNNING --> COMPLETED, every step succeeded): a
 * cancel then, which only a listener's hook on the driving thread can make (the saga is still RUNNING while it
 * hears of the last step), is refused like a cancel past the pivot, and the saga completes; before the last step
 * the same hook's cancel is accepted.
 */
class CancelOnceEveryStepSucceededTest {
    record Data(String id) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE).build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> compensated = new CopyOnWriteArrayList<>();
    private final List<Throwable> refusals = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator cancellingAfter(String cancelAfter, SagaDefinition<Data> definition) {
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .listener(new SagaListener() {
                    @Override
                    public void onStepCompleted(SagaInstance instance, String step) {
                        if (step.equals(cancelAfter)) {
                            try {
                                self.get().cancel(instance.sagaId());
                            } catch (RuntimeException refused) {
                                refusals.add(refused);
                            }
                        }
                    }
                })
                .register(definition).build();
        self.set(orchestrator);
        return orchestrator;
    }

    /** Like the OrderSaga: compensatable steps, the last one without compensation. */
    private SagaDefinition<Data> localSaga() {
        return SagaDefinition.builder("local-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> compensated.add("reserve"))
                .step("ship").action((d, ctx) -> d)
                .build();
    }

    @Test
    void aCancelFromTheHookOfTheLastStepIsRefusedAndTheSagaCompletes() {
        try (SagaOrchestrator orchestrator = cancellingAfter("ship", localSaga())) {
            orchestrator.start(localSaga(), "saga-1", null, new Data("a"));
            transport.drainAll();

            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of(), compensated);
            assertEquals(1, refusals.size(), "the cancel is refused: " + refusals);
            assertInstanceOf(SagaException.class, refusals.get(0));
            assertTrue(refusals.get(0).getMessage().contains("every step succeeded"), refusals.get(0).getMessage());
        }
    }

    @Test
    void aCancelFromTheHookOfTheLastAsynchronousStepIsRefusedAndTheSagaCompletes() {
        CompletableFuture<Data> shipped = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("async-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> compensated.add("reserve"))
                .step("ship").asyncAction((d, ctx) -> shipped).compensation((d, ctx) -> compensated.add("ship"))
                .build();
        try (SagaOrchestrator orchestrator = cancellingAfter("ship", definition)) {
            orchestrator.start(definition, "saga-1", null, new Data("a"));
            shipped.complete(new Data("a"));
            transport.drainAll();

            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of(), compensated);
            assertEquals(1, refusals.size(), "the cancel is refused: " + refusals);
        }
    }

    @Test
    void aCancelFromTheHookOfAnEarlierStepIsStillAccepted() {
        try (SagaOrchestrator orchestrator = cancellingAfter("reserve", localSaga())) {
            orchestrator.start(localSaga(), "saga-1", null, new Data("a"));
            transport.drainAll();

            assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("reserve"), compensated);
            assertEquals(List.of(), refusals);
        }
    }
}
