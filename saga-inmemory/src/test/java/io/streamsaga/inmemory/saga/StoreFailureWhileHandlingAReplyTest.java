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
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A store failure stops the saga, which "resumes on recover()". The reply whose outcome could not be stored
 * must not be acknowledged as handled: a waiting step whose command recovery does not re-send (an outbox, or
 * a participant that answers a command once) would wait for it forever. The bus delivers it again.
 */
class StoreFailureWhileHandlingAReplyTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    /** Fails the first write of the step's success. */
    private static final class FailingOnceStore extends ForwardingSagaStore {
        private final AtomicBoolean failed = new AtomicBoolean();

        FailingOnceStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (transition.type() == TransitionType.STEP_SUCCEEDED && failed.compareAndSet(false, true)) {
                throw new IllegalStateException("connection reset");
            }
            delegate.update(updated, transition);
        }
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final FailingOnceStore store = new FailingOnceStore();
    private final List<Message> commands = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aReplyWhoseOutcomeTheStoreFailedToWriteIsDeliveredAgain() {
        SagaDefinition<Data> definition = SagaDefinition.builder("pay-saga", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId())) // no timeout
                .build();
        // The participant answers each command once (a re-sent command is a duplicate it ignores).
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));
        transport.drainAll(); // the store fails on the step's success: the saga stops

        orchestrator.recover(); // as the store failure's log says
        transport.drainAll();

        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(new Data("ch-1"), store.find("saga-1").orElseThrow().data());
        orchestrator.close();
    }
}
