package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link SagaListener#onResolved}: an operator's markResolved is heard of once, after its write and its
 * {@code resolved} lifecycle event, on the operator's thread, as the other hooks after theirs; a listener that throws
 * changes nothing; a resolve the store refuses, or that another orchestrator's write beat, is not heard of.
 */
class ResolvedSagaListenerTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();
    private final List<String> events = new CopyOnWriteArrayList<>();
    private final List<String> heard = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Order> saga = SagaDefinition.builder("order", Order.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                throw new IllegalStateException("release refused");
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    /** Hears of the resolve; what the lifecycle topic delivered by then is its last event. */
    private final class Recording implements SagaListener {
        Thread thread;

        @Override
        public void onResolved(SagaInstance instance) {
            thread = Thread.currentThread();
            transport.drainAll(); // delivers on this thread what was published before the hook
            heard.add("onResolved " + instance.status() + " after " + events.get(events.size() - 1));
        }
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator orchestrator(SagaStore store, SagaListener... listeners) {
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> events.add(event.event()));
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(saga).publishLifecycleEvents("saga-events");
        for (SagaListener listener : listeners) {
            builder.listener(listener);
        }
        return builder.build();
    }

    @Test
    void aSagaResolvedByTheOperatorIsHeardOfOnceAfterItsResolvedEventOnTheOperatorsThread() {
        Recording listener = new Recording();
        try (SagaOrchestrator orchestrator = orchestrator(new InMemorySagaStore(), listener)) {
            orchestrator.start(saga, "s-1", "o-1", new Order("o-1"));
            orchestrator.markResolved("s-1");
        }
        assertEquals(List.of("onResolved RESOLVED after resolved"), heard);
        assertSame(Thread.currentThread(), listener.thread);
    }

    @Test
    void aListenerThatThrowsFromOnResolvedChangesNothingAndTheNextOneStillHearsOfIt() {
        SagaListener throwing = new SagaListener() {
            @Override
            public void onResolved(SagaInstance instance) {
                throw new IllegalStateException("dashboard down");
            }
        };
        InMemorySagaStore store = new InMemorySagaStore();
        try (SagaOrchestrator orchestrator = orchestrator(store, throwing, new Recording())) {
            orchestrator.start(saga, "s-2", "o-2", new Order("o-2"));
            orchestrator.markResolved("s-2");
        }
        assertEquals(SagaStatus.RESOLVED, store.find("s-2").orElseThrow().status());
        assertEquals(List.of("onResolved RESOLVED after resolved"), heard);
    }

    @Test
    void aResolveTheStoreRefusesIsNotHeardOf() {
        SagaStore refusing = failingTheResolve(new SagaWriteRefusedException("the store refuses it", null));
        try (SagaOrchestrator orchestrator = orchestrator(refusing, new Recording())) {
            orchestrator.start(saga, "s-3", "o-3", new Order("o-3"));
            assertThrows(SagaWriteRefusedException.class, () -> orchestrator.markResolved("s-3"));
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, refusing.find("s-3").orElseThrow().status());
        }
        assertEquals(List.of(), heard);
    }

    @Test
    void aResolveAnotherOrchestratorsWriteBeatIsNotHeardOf() {
        SagaStore beaten = failingTheResolve(new ConcurrentSagaUpdateException("s-4", 4, 5));
        try (SagaOrchestrator orchestrator = orchestrator(beaten, new Recording())) {
            orchestrator.start(saga, "s-4", "o-4", new Order("o-4"));
            assertThrows(ConcurrentSagaUpdateException.class, () -> orchestrator.markResolved("s-4"));
        }
        assertEquals(List.of(), heard);
    }

    private static SagaStore failingTheResolve(RuntimeException failure) {
        return new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_RESOLVED) {
                    throw failure;
                }
                super.update(updated, transition);
            }
        };
    }
}
