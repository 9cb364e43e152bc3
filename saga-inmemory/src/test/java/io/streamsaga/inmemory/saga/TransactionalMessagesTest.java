package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's side of transactional messages: with a store that stores outgoing messages, commands and
 * lifecycle events are handed to the store with their transition and never published by the engine.
 */
class TransactionalMessagesTest {
    record Data(String id, String answer) {
    }

    record Ask(String id) {
    }

    record Answer(String value) {
    }

    /** An in-memory store claiming the capability: it records what it was handed, per transition. */
    static final class RecordingStore extends ForwardingSagaStore {
        final Map<TransitionType, List<Message>> messages = new java.util.concurrent.ConcurrentHashMap<>();
        final List<Message> all = new CopyOnWriteArrayList<>();

        RecordingStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public boolean storesOutgoingMessages() {
            return true;
        }

        @Override
        public void insert(SagaInstance instance, SagaTransition transition) {
            throw new AssertionError("the engine must use the message-taking insert");
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            throw new AssertionError("the engine must use the message-taking update");
        }

        @Override
        public void insert(SagaInstance instance, SagaTransition transition, List<Message> outgoing) {
            delegate.insert(instance, transition);
            record(transition, outgoing);
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition, List<Message> outgoing) {
            delegate.update(updated, transition);
            record(transition, outgoing);
        }

        private void record(SagaTransition transition, List<Message> outgoing) {
            if (!outgoing.isEmpty()) {
                messages.merge(transition.type(), List.copyOf(outgoing), (a, b) -> {
                    List<Message> both = new ArrayList<>(a);
                    both.addAll(b);
                    return both;
                });
                all.addAll(outgoing);
            }
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register("ask", 1, Ask.class).register("answer", 1, Answer.class)
            .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();

    private final SagaDefinition<Data> saga = SagaDefinition.builder("ask-saga", Data.class)
            .step("local").action((d, ctx) -> d)
            .step("remote").command("asks", (d, ctx) -> new Ask(d.id()))
            .onReply(Answer.class, (d, answer) -> new Data(d.id(), answer.value()))
            .build();

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    @Test
    void commandsAndLifecycleEventsAreHandedToTheStoreWithTheirTransitionNotPublished() {
        List<String> asks = new CopyOnWriteArrayList<>();
        List<String> events = new CopyOnWriteArrayList<>();
        bus.subscribe("asked", "asks", Ask.class, (ask, ctx) -> {
            asks.add(ctx.message().id());
            SagaMessages.reply(bus, ctx.message(), new Answer("answer-" + ask.id()));
        });
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> events.add(event.event()));
        RecordingStore store = new RecordingStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(saga).publishLifecycleEvents("saga-events").build()) {
            CompletableFuture<SagaResult<Data>> result = orchestrator.start(saga, "s-1", null, new Data("1", null))
                    .toCompletableFuture();
            transport.drainAll();
            assertEquals(List.of(), asks, "the engine sent no command itself");
            assertEquals(List.of(), events, "nor a lifecycle event");
            assertEquals(StepStatus.WAITING, store.find("s-1").orElseThrow().step("remote").map(StepState::status).orElseThrow());

            Message command = store.messages.get(TransitionType.STEP_WAITING).get(0);
            assertEquals("s-1/2026-01-01T00:00:00Z/remote/1", command.id());
            assertEquals("asks", command.topic());
            assertInstanceOf(byte[].class, command.payload(), "encoded for the store");
            assertEquals("s-1/2026-01-01T00:00:00Z/1", store.messages.get(TransitionType.SAGA_STARTED).get(0).id());

            // What a relay does: publish what the store holds.
            store.all.forEach(bus::publish);
            transport.drainAll();
            assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
            assertEquals("answer-1", result.join().data().answer());
            assertEquals(List.of("s-1/2026-01-01T00:00:00Z/remote/1"), asks);
            assertTrue(store.messages.containsKey(TransitionType.SAGA_COMPLETED));
        }
        assertEquals(List.of("started", "step-completed"), events, "only the events relayed so far");
    }

    record OrderPlaced(String id) {
    }

    @Test
    void messagesHandedToTheStoreInsideAHandlerCarryWhatAPublishThereWouldInherit() {
        // Published by the engine, a command sent while a handler runs inherits the handled message's correlation
        // id, saga id and traceparent, its id as causation id; handed to the store, the relay publishes it later
        // outside any handler, so the engine must add them itself.
        EventBus ordersBus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register("ask", 1, Ask.class).register("answer", 1, Answer.class).register("order-placed", 1, OrderPlaced.class)
                .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();
        RecordingStore store = new RecordingStore();
        String traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(ordersBus).scheduler(scheduler)
                .register(saga).publishLifecycleEvents("saga-events").build()) {
            ordersBus.subscribe("sagas", "orders", OrderPlaced.class,
                    (event, ctx) -> orchestrator.start(saga, "s-" + event.id(), null, new Data(event.id(), null)));
            Message placed = Message.builder("orders").id("order-message-1").type("order-placed").payload(new OrderPlaced("1"))
                    .header(io.streamsaga.message.MessageHeaders.CORRELATION_ID, "flow-1")
                    .header(io.streamsaga.message.MessageHeaders.TRACEPARENT, traceparent).build();
            ordersBus.publish(placed);
            transport.drainAll();

            Message command = store.messages.get(TransitionType.STEP_WAITING).get(0);
            assertEquals("flow-1", command.correlationId().orElse(null), command.toString());
            assertEquals("order-message-1", command.header(io.streamsaga.message.MessageHeaders.CAUSATION_ID).orElse(null));
            assertEquals(traceparent, command.header(io.streamsaga.message.MessageHeaders.TRACEPARENT).orElse(null));
            assertEquals("s-1", command.sagaId().orElse(null), "the saga's own id wins");
            Message started = store.messages.get(TransitionType.SAGA_STARTED).get(0);
            assertEquals("flow-1", started.correlationId().orElse(null), started.toString());
            assertEquals(traceparent, started.header(io.streamsaga.message.MessageHeaders.TRACEPARENT).orElse(null));
        } finally {
            ordersBus.close();
        }
    }

    @Test
    void aStoreWithoutTheCapabilityRefusesMessagesAndWritesNothing() {
        InMemorySagaStore store = new InMemorySagaStore();
        Instant now = Instant.parse("2026-01-01T00:00:00Z");
        SagaInstance instance = new SagaInstance("s-2", "ask-saga", 1, null, "data", new Data("2", null), SagaStatus.RUNNING,
                List.of(new StepState("local", StepStatus.PENDING, 0, 0, null)), null, null, now, now, 1);
        Message message = Message.builder("asks").type("ask").payload(new byte[]{'{', '}'}).build();

        assertEquals(false, store.storesOutgoingMessages());
        assertThrows(ConfigurationException.class, () -> store.insert(instance,
                new SagaTransition("s-2", 1, now, TransitionType.SAGA_STARTED, null, 0, null), List.of(message)));
        assertTrue(store.find("s-2").isEmpty());
        store.insert(instance, new SagaTransition("s-2", 1, now, TransitionType.SAGA_STARTED, null, 0, null), List.of());
        assertTrue(store.find("s-2").isPresent(), "no messages: a plain insert");
    }
}
