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
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * SagaOrchestrator.close(): "the store keeps their state" and the saga resumes on recover(). A reply that
 * arrives while close() runs must stay on the reply topic for the next orchestrator of the group, not be
 * failed and dead-lettered: a step without a timeout whose command is not re-sent (a transactional outbox,
 * or a participant that answers a command once) would wait for it forever.
 */
class ReplyDuringCloseTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler virtual = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(virtual).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<Message> commands = new CopyOnWriteArrayList<>();
    /** Runs once, inside close(): when it cancels the orchestrator's purge timer. */
    private volatile Runnable duringClose;

    /** The virtual scheduler; cancelling a task runs {@link #duringClose} first. */
    private final Scheduler scheduler = new Scheduler() {
        @Override
        public Clock clock() {
            return virtual.clock();
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            Cancellable cancellable = virtual.schedule(delay, task);
            return () -> {
                Runnable hook = duringClose;
                duringClose = null;
                if (hook != null) {
                    hook.run();
                }
                cancellable.cancel();
            };
        }

        @Override
        public void sleep(Duration delay) {
            virtual.sleep(delay);
        }

        @Override
        public void close() {
        }
    };

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aReplyArrivingWhileTheOrchestratorClosesIsHandledByTheNextOne() {
        SagaDefinition<Data> definition = SagaDefinition.builder("pay-saga", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId())) // no timeout
                .build();
        // The participant answers each command once (a re-sent command is a duplicate it ignores).
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .purgeEvery(Duration.ofDays(1)).register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));

        duringClose = transport::drainAll; // the reply is delivered while close() runs
        first.close();

        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        second.recover();
        transport.drainAll();

        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(new Data("ch-1"), store.find("saga-1").orElseThrow().data());
        second.close();
    }
}
