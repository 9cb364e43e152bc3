package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
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

/**
 * Lifecycle events are published in the order of the transitions they report (docs/sagas.md, Hooks,
 * events): also when a listener cancels the saga from a hook, "started" comes before "compensating".
 */
class CancelFromAListenerTest {
    record Data(String id) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE).build();
    private final InMemorySagaStore store = new InMemorySagaStore();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aSagaCancelledFromOnStartedPublishesStartedFirst() {
        List<String> events = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "saga-lifecycle", Message.class, (m, ctx) -> events.add(((SagaLifecycleEvent) m.payload()).event()));
        SagaDefinition<Data> definition = SagaDefinition.builder("cancelled-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> CompletableFuture.completedFuture(d))
                .compensation((d, ctx) -> { })
                .build();
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .publishLifecycleEvents("saga-lifecycle")
                .listener(new SagaListener() {
                    @Override
                    public void onStarted(SagaInstance instance) {
                        self.get().cancel(instance.sagaId());
                    }
                })
                .register(definition).build();
        self.set(orchestrator);

        orchestrator.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("started", "compensating", "compensated"), events);
        orchestrator.close();
    }

    @Test
    void aSagaCancelledFromOnStepCompletedPublishesStepCompletedFirst() {
        List<String> events = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "saga-lifecycle", Message.class, (m, ctx) -> events.add(((SagaLifecycleEvent) m.payload()).event()));
        SagaDefinition<Data> definition = SagaDefinition.builder("cancelled-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // never completes
                .compensation((d, ctx) -> { })
                .build();
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .publishLifecycleEvents("saga-lifecycle")
                .listener(new SagaListener() {
                    @Override
                    public void onStepCompleted(SagaInstance instance, String step) {
                        self.get().cancel(instance.sagaId());
                    }
                })
                .register(definition).build();
        self.set(orchestrator);

        orchestrator.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("started", "step-completed", "compensating", "compensated"), events);
        orchestrator.close();
    }
}
