package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.TwoRefusedCancellations;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator's retryCompensation or skipCompensation moves a saga that needs attention back to COMPENSATING (or, for
 * a retried stuck step, RUNNING): a consumer of the lifecycle topic, whose last event of it was {@code failed}, hears
 * of that at once ({@code compensating}, as a saga beginning to compensate; {@code retried}, status RUNNING), not only
 * at the saga's next event, which for a retried remote compensation can be its reply's timeout; and listeners hear of
 * it after that event ({@code onCompensationStarting}, {@code onRetried}). A skip that leaves another compensation
 * failed tells {@code failed} (and {@code onFailed}) again, naming the compensation that needs attention now.
 */
class OperatorRestartLifecycleEventTest {
    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();
    private final AtomicBoolean releaseRefused = new AtomicBoolean(true);
    private final AtomicBoolean carrierDown = new AtomicBoolean(true);
    private final List<String> heard = new CopyOnWriteArrayList<>();
    /** The step whose compensation failure each onFailed names. */
    private final List<String> failedHeard = new CopyOnWriteArrayList<>();
    /** What each onRetried was told the saga is retried after. */
    private final List<SagaFailure> retriedAfterHeard = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Order> compensating = SagaDefinition.builder("order", Order.class)
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                if (releaseRefused.get()) {
                    throw new IllegalStateException("release refused");
                }
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    private final SagaDefinition<Order> stuck = SagaDefinition.builder("shipping", Order.class)
            .pivot("charge").action((d, ctx) -> d)
            .retriable("ship").action((d, ctx) -> {
                if (carrierDown.get()) {
                    throw new IllegalStateException("carrier down");
                }
                return d;
            }).retry(RetryPolicy.NONE)
            .build();

    /** Needs attention for two failed compensations at once. */
    private final SagaDefinition<Order> trip = TwoRefusedCancellations.trip(Order.class, "order");

    /** Records each hook, and each lifecycle event as the bus delivers it, in one order. */
    private final SagaListener listener = new SagaListener() {
        @Override
        public void onCompensationStarting(SagaInstance instance) {
            heard.add("onCompensationStarting " + instance.status());
        }

        @Override
        public void onRetried(SagaInstance instance, SagaFailure retriedAfter) {
            heard.add("onRetried " + instance.status());
            retriedAfterHeard.add(retriedAfter);
        }

        @Override
        public void onFailed(SagaInstance instance) {
            failedHeard.add(instance.compensationFailure().step());
        }
    };

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator orchestrator(SagaDefinition<Order> definition, List<SagaLifecycleEvent> events) {
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> events.add(event));
        return SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition).publishLifecycleEvents("saga-events").listener(listener).build();
    }

    @Test
    void aRetriedCompensationPublishesACompensatingEventAfterItsFailedOne() {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        try (SagaOrchestrator orchestrator = orchestrator(compensating, events)) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(compensating, "s-1", "o-1",
                    new Order("o-1")).toCompletableFuture().join().outcome());
            transport.drainAll();
            releaseRefused.set(false);
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.retryCompensation("s-1").toCompletableFuture().join().outcome());
            transport.drainAll();
        }
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "compensating", "compensated"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.COMPENSATING, events.get(4).status());
        assertEquals("charge: java.lang.IllegalStateException: card declined", events.get(4).error());
        assertEquals(List.of("onCompensationStarting COMPENSATING", "onCompensationStarting COMPENSATING"), heard);
    }

    @Test
    void aSkippedCompensationPublishesACompensatingEventAfterItsFailedOne() {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        try (SagaOrchestrator orchestrator = orchestrator(compensating, events)) {
            orchestrator.start(compensating, "s-2", "o-2", new Order("o-2"));
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.skipCompensation("s-2", "reserve")
                    .toCompletableFuture().join().outcome());
            transport.drainAll();
        }
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "compensating", "compensated"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.COMPENSATING, events.get(4).status());
        assertEquals(2, heard.size(), heard.toString());
    }

    @Test
    void aRetriedStuckStepPublishesARetriedEventWithStatusRunningAfterItsFailedOne() {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        try (SagaOrchestrator orchestrator = orchestrator(stuck, events)) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(stuck, "s-3", "o-3", new Order("o-3"))
                    .toCompletableFuture().join().outcome());
            carrierDown.set(false);
            assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("s-3").toCompletableFuture().join().outcome());
            transport.drainAll();
        }
        assertEquals(List.of("started", "step-completed", "failed", "retried", "step-completed", "completed"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        SagaLifecycleEvent retried = events.get(3);
        assertEquals(SagaStatus.RUNNING, retried.status());
        // What it retries after, as 'resolved' names the failure resolved: the 'failed' event's error
        assertEquals("ship: java.lang.IllegalStateException: carrier down", retried.error());
        assertEquals(events.get(2).error(), retried.error());
        assertEquals(List.of("onRetried RUNNING"), heard);
    }

    @Test
    void aRetriedStuckStepTellsOnRetriedTheFailureItRetriesAfterWhichTheRunningInstanceNoLongerHolds() {
        try (SagaOrchestrator orchestrator = orchestrator(stuck, new CopyOnWriteArrayList<>())) {
            SagaFailure stuckOn = orchestrator.start(stuck, "s-5", "o-5", new Order("o-5")).toCompletableFuture().join()
                    .failure();
            carrierDown.set(false);
            assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("s-5").toCompletableFuture().join().outcome());
            transport.drainAll();

            assertEquals(List.of(new SagaFailure("ship", IllegalStateException.class.getName(), "carrier down")),
                    retriedAfterHeard);
            assertEquals(List.of(stuckOn), retriedAfterHeard);
        }
    }

    @Test
    void aRetriedStuckStepHandsARetriedEventNamingWhatItRetriesAfterToAStoreThatStoresOutgoingMessages() {
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus)
                .scheduler(scheduler).register(stuck).publishLifecycleEvents("saga-events").build()) {
            orchestrator.start(stuck, "s-7", "o-7", new Order("o-7"));
            carrierDown.set(false);
            assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("s-7").toCompletableFuture().join().outcome());
        }
        List<SagaLifecycleEvent> failed = lifecycleEvents(store.messages.get(TransitionType.SAGA_NEEDS_ATTENTION));
        List<SagaLifecycleEvent> retried = lifecycleEvents(store.messages.get(TransitionType.SAGA_RETRIED));
        assertEquals(List.of("retried"), retried.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.RUNNING, retried.get(0).status());
        assertEquals("ship: java.lang.IllegalStateException: carrier down", retried.get(0).error());
        assertEquals(failed.get(0).error(), retried.get(0).error());
    }

    @Test
    void anOperatorRestartHandsItsEventToAStoreThatStoresOutgoingMessagesUnderAnIdOfItsOwn() {
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus)
                .scheduler(scheduler).register(compensating).publishLifecycleEvents("saga-events").build()) {
            orchestrator.start(compensating, "s-4", "o-4", new Order("o-4"));
            orchestrator.retryCompensation("s-4"); // the compensation fails again: needs attention again
            orchestrator.skipCompensation("s-4", "reserve");
        }
        List<SagaLifecycleEvent> retried = lifecycleEvents(store.messages.get(TransitionType.SAGA_RETRIED));
        List<SagaLifecycleEvent> skipped = lifecycleEvents(store.messages.get(TransitionType.COMPENSATION_SKIPPED));
        assertEquals(List.of("compensating"), retried.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.COMPENSATING, retried.get(0).status());
        assertEquals(List.of("compensating"), skipped.stream().map(SagaLifecycleEvent::event).toList());
        List<String> ids = store.all.stream().filter(m -> SagaLifecycleEvent.TYPE.equals(m.type())).map(Message::id).toList();
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    @Test
    void aSkipThatLeavesAnotherCompensationFailedPublishesAFailedEventNamingThatOne() {
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        try (SagaOrchestrator orchestrator = orchestrator(trip, events)) {
            String skipped = orchestrator.start(trip, "s-5", "o-5", new Order("o-5")).toCompletableFuture().join()
                    .compensationFailure().step();
            String other = skipped.equals("hotel") ? "flight" : "hotel";
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.skipCompensation("s-5", skipped)
                    .toCompletableFuture().join().outcome());
            transport.drainAll();

            List<String> names = events.stream().map(SagaLifecycleEvent::event).toList();
            assertEquals(List.of("compensating", "failed", "failed"), names.subList(names.size() - 3, names.size()),
                    names.toString());
            SagaLifecycleEvent failedAgain = events.get(events.size() - 1);
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, failedAgain.status());
            assertTrue(failedAgain.error().startsWith(other + ": "), failedAgain.error());
            assertEquals(List.of(skipped, other), failedHeard, "onFailed heard again, naming the other step");
        }
    }

    @Test
    void aSkipThatLeavesAnotherCompensationFailedHandsAFailedEventToAStoreThatStoresOutgoingMessages() {
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(trip).publishLifecycleEvents("saga-events").build()) {
            String skipped = orchestrator.start(trip, "s-6", "o-6", new Order("o-6")).toCompletableFuture().join()
                    .compensationFailure().step();
            orchestrator.skipCompensation("s-6", skipped);
            String other = skipped.equals("hotel") ? "flight" : "hotel";
            List<SagaLifecycleEvent> events = lifecycleEvents(store.messages.get(TransitionType.COMPENSATION_SKIPPED));
            assertEquals(List.of("failed"), events.stream().map(SagaLifecycleEvent::event).toList());
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, events.get(0).status());
            assertTrue(events.get(0).error().startsWith(other + ": "), events.get(0).error());
        }
        List<String> ids = store.all.stream().filter(m -> SagaLifecycleEvent.TYPE.equals(m.type())).map(Message::id).toList();
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    private List<SagaLifecycleEvent> lifecycleEvents(List<Message> messages) {
        return (messages == null ? List.<Message>of() : messages).stream()
                .filter(m -> SagaLifecycleEvent.TYPE.equals(m.type()))
                .map(m -> bus.codec().decode(m, SagaLifecycleEvent.class)).toList();
    }
}
