package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * "A reply for a saga or step that moved on is ignored" (docs/sagas.md, Remote steps): also by an
 * orchestrator that does not drive the saga, which must not take it over because of that reply.
 */
class LateReplyToAnotherOrchestratorTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final AtomicInteger shipments = new AtomicInteger();
    private final List<Message> commands = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aDuplicateReplyForAStepThatMovedOnDoesNotMakeAnotherOrchestratorRerunTheNextStep() {
        SagaDefinition<Data> definition = SagaDefinition.builder("dup-saga", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> d)
                .step("ship").asyncAction((d, ctx) -> {
                    shipments.incrementAndGet();
                    return new CompletableFuture<Data>(); // still shipping
                })
                .build();
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator driving = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        // Another instance over the same store; it reads the replies too (here: in its own consumer group).
        SagaOrchestrator other = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).group("other-orchestrator").build();

        driving.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(StepStatus.RUNNING, store.find("saga-1").orElseThrow().step("ship").orElseThrow().status());
        assertEquals(1, shipments.get());

        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1")); // the participant answers twice
        transport.drainAll();

        assertEquals(1, shipments.get(), "the step in flight at the driving orchestrator was run again by the other one");
        driving.close();
        other.close();
    }
}
