package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An operator's retryCompensation or skipCompensation made from inside a listener's {@code onFailed} (the saga's run
 * still being driven) emits its {@code compensating} event and calls {@code onCompensationStarting} once, after the
 * {@code failed} event, and before the resumed run's {@code compensated}.
 */
class OperatorRestartFromAListenerTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();
    private final AtomicBoolean releaseRefused = new AtomicBoolean(true);
    private final List<String> heard = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                if (releaseRefused.getAndSet(false)) {
                    throw new IllegalStateException("release refused");
                }
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

    private void runWithAnOnFailedThat(java.util.function.Consumer<SagaOrchestrator> operatorCall) {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> events.add(event));
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaListener listener = new SagaListener() {
            @Override
            public void onCompensationStarting(SagaInstance instance) {
                heard.add("onCompensationStarting");
            }

            @Override
            public void onFailed(SagaInstance instance) {
                heard.add("onFailed");
                operatorCall.accept(self.get());
            }

            @Override
            public void onCompensated(SagaInstance instance) {
                heard.add("onCompensated");
            }
        };
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .scheduler(scheduler).register(definition).publishLifecycleEvents("saga-events").listener(listener)
                .build()) {
            self.set(orchestrator);
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.start(definition, "s-1", "o-1", new Order("o-1"))
                    .toCompletableFuture().join().outcome());
            transport.drainAll();
        }
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "compensating", "compensated"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(List.of("onCompensationStarting", "onFailed", "onCompensationStarting", "onCompensated"), heard);
    }

    @Test
    void aRetryFromInsideOnFailedIsHeardOfOnceBeforeTheCompensated() {
        runWithAnOnFailedThat(o -> o.retryCompensation("s-1"));
    }

    @Test
    void aSkipFromInsideOnFailedIsHeardOfOnceBeforeTheCompensated() {
        runWithAnOnFailedThat(o -> o.skipCompensation("s-1", "reserve"));
    }
}
