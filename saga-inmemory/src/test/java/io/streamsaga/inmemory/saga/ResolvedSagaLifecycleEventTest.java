package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A saga an operator resolves ({@code markResolved}) ends with a {@code resolved} lifecycle event, so that a consumer
 * of the lifecycle topic does not take it for one that still needs attention: its last event was {@code failed}.
 */
class ResolvedSagaLifecycleEventTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();

    private final SagaDefinition<Order> saga = SagaDefinition.builder("order", Order.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                throw new IllegalStateException("release refused");
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    @Test
    void aSagaResolvedByTheOperatorPublishesAResolvedLifecycleEventAfterItsFailedOne() {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> events.add(event));
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .scheduler(scheduler).register(saga).publishLifecycleEvents("saga-events").build()) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(saga, "s-1", "o-1", new Order("o-1"))
                    .toCompletableFuture().join().outcome());
            orchestrator.markResolved("s-1");
            transport.drainAll();
        }
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "resolved"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        SagaLifecycleEvent resolved = events.get(4);
        assertEquals(SagaStatus.RESOLVED, resolved.status());
        assertEquals("s-1", resolved.sagaId());
    }

    @Test
    void aSagaResolvedByTheOperatorHandsAResolvedLifecycleEventToAStoreThatStoresOutgoingMessages() {
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus)
                .scheduler(scheduler).register(saga).publishLifecycleEvents("saga-events").build()) {
            orchestrator.start(saga, "s-2", "o-2", new Order("o-2"));
            orchestrator.markResolved("s-2");
        }
        List<Message> resolved = store.messages.getOrDefault(TransitionType.SAGA_RESOLVED, List.of());
        assertEquals(1, resolved.size(), store.messages.keySet().toString());
        SagaLifecycleEvent event = bus.codec().decode(resolved.get(0), SagaLifecycleEvent.class);
        assertEquals("resolved", event.event());
        assertEquals(SagaStatus.RESOLVED, event.status());
    }
}
