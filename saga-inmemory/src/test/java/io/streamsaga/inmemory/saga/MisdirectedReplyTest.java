package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reply the orchestrator refuses for the step it names (a step the saga does not have) is dead-lettered, and
 * must not leave the saga behind: "recovery resumes every unfinished saga" (docs/sagas.md).
 */
class MisdirectedReplyTest {
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
    private final List<Message> commands = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private final SagaDefinition<Data> definition = SagaDefinition.builder("pay-saga", Data.class)
            .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
            .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId()))
            .timeout(Duration.ofMinutes(1))
            .build();

    @Test
    void aReplyNamingAStepTheSagaDoesNotHaveReachingAFreshOrchestratorLeavesTheSagaToItsRecovery() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        first.close();

        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        bus.publish(Message.builder("saga-replies").type("charged").payload(new Charged("c-1"))
                .header(MessageHeaders.SAGA_ID, "saga-1").header(SagaMessages.STEP, "no-such-step").build())
                .toCompletableFuture().join();
        transport.drainAll();
        assertEquals(1, transport.messages("saga-replies.DLT").size());

        SagaOrchestrator.RecoveryReport report = second.recover();
        assertEquals(List.of("saga-1"), report.resumed(), "the saga the refused reply named is not resumed");
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(commands.size() - 1), new Charged("c-1"));
        transport.drainAll();
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        second.close();
    }

    @Test
    void aMisdirectedReplyMigratingItsSagaWhileARecoveryAdoptsItLeavesTheRecoveredRunRegistered() throws Exception {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        first.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        first.close();

        // Version 2 keeps the step; the reply thread's migration is held in its upcaster while a recovery adopts it.
        SagaDefinition<Data> v2 = SagaDefinition.builder("pay-saga", Data.class).version(2)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId()))
                .timeout(Duration.ofMinutes(1))
                .build();
        CountDownLatch upcasting = new CountDownLatch(1);
        CountDownLatch recovered = new CountDownLatch(1);
        AtomicBoolean held = new AtomicBoolean();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(v2)
                .dataUpcaster("pay-saga", 1, data -> {
                    if (held.compareAndSet(false, true)) {
                        upcasting.countDown();
                        try {
                            recovered.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    return data;
                }).build();
        bus.publish(Message.builder("saga-replies").type("charged").payload(new Charged("c-1"))
                .header(MessageHeaders.SAGA_ID, "saga-1").header(SagaMessages.STEP, "no-such-step").build())
                .toCompletableFuture().join();
        Thread replies = new Thread(transport::drainAll);
        replies.start();
        upcasting.await();
        assertEquals(List.of("saga-1"), second.recover().resumed());
        recovered.countDown();
        replies.join();
        transport.drainAll();
        assertEquals(1, transport.messages("saga-replies.DLT").size());

        assertTrue(second.recover().resumed().isEmpty(),
                "the run the recovery adopted was unregistered by the refused reply, so a second run drives the saga");
        SagaMessages.reply(bus, commands.get(commands.size() - 1), new Charged("c-1"));
        transport.drainAll();
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        second.close();
    }

    /**
     * docs/sagas.md: an orchestrator that does not drive the saga refuses such a reply "without taking the saga over".
     * One whose registered version is newer migrated the saga (its upcaster run, the migration stored under its node's
     * id) before refusing the reply, so the node that drove the saga lost its next write (the real reply's outcome) and
     * stopped, and the saga, owned by a live node that does not drive it, was skipped by every recovery but that
     * node's. The reply is now refused before the migration is stored: the saga stays as it was, and its driver
     * completes it.
     */
    @Test
    void aMisdirectedReplyReachingANodeOfANewerVersionLeavesTheSagaToTheNodeThatDrivesIt() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        Duration heartbeat = Duration.ofSeconds(10);
        Duration lease = Duration.ofSeconds(30);
        SagaOrchestrator a = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition)
                .replyTopic("replies-a").ownership("a", heartbeat, lease).build();
        a.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        SagaInstance before = store.find("saga-1").orElseThrow();
        SagaDefinition<Data> v2 = SagaDefinition.builder("pay-saga", Data.class).version(2)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId()))
                .timeout(Duration.ofMinutes(1))
                .build();
        SagaOrchestrator b = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(v2)
                .dataUpcaster("pay-saga", 1, data -> data).ownership("b", heartbeat, lease).build();
        b.recover(); // subscribes b to its replies; the saga is a's, a live node
        transport.drainAll();

        bus.publish(Message.builder("saga-replies").type("charged").payload(new Charged("c-1"))
                .header(MessageHeaders.SAGA_ID, "saga-1").header(SagaMessages.STEP, "no-such-step").build())
                .toCompletableFuture().join();
        transport.drainAll();

        assertEquals(1, transport.messages("saga-replies.DLT").size());
        assertEquals(before, store.find("saga-1").orElseThrow(), "the refused reply changed the saga");
        SagaMessages.reply(bus, commands.get(commands.size() - 1), new Charged("c-1"));
        transport.drainAll();
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        a.close();
        b.close();
    }
}
