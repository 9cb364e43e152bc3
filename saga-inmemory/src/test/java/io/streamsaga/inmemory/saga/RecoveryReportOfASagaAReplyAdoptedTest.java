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
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A saga that a reply's arrival made an orchestrator drive (it was not started there, and no recovery had adopted it
 * yet: a restart, the reply read before {@code recover()} was called) is one this orchestrator now drives, so the first
 * recovery that reads it reports it in {@link SagaOrchestrator.RecoveryReport#resumed()}, as it reports a saga it adopts
 * while the reply does: the application that follows the resumed sagas through {@code result(sagaId)} hears of it.
 */
class RecoveryReportOfASagaAReplyAdoptedTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    record Ship(String id) {
    }

    record Shipped(String parcel) {
    }

    record Refund(String id) {
    }

    record Refunded(String id) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                    .register("ship", 1, Ship.class).register("shipped", 1, Shipped.class)
                    .register("refund", 1, Refund.class).register("refunded", 1, Refunded.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<Message> charges = new CopyOnWriteArrayList<>();
    private final List<Message> shipments = new CopyOnWriteArrayList<>();
    private final List<Message> refunds = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Data> definition = SagaDefinition.builder("pay-and-ship", Data.class)
            .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
            .onReply(Charged.class, (d, reply) -> d)
            .timeout(Duration.ofMinutes(1))
            .step("ship").command("ship-commands", (d, ctx) -> new Ship(d.id()))
            .onReply(Shipped.class, (d, reply) -> new Data(reply.parcel()))
            .timeout(Duration.ofMinutes(1))
            .build();

    /** A charge refunded by a command of its own (a remote compensation), then a local step. */
    private final SagaDefinition<Data> refundable = SagaDefinition.builder("pay-or-refund", Data.class)
            .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
            .onReply(Charged.class, (d, reply) -> d)
            .compensationCommand("refund-commands", (d, ctx) -> new Refund(d.id()))
            .onCompensationReply(Refunded.class, (d, reply) -> {
            })
            .timeout(Duration.ofMinutes(1))
            .step("confirm").action((d, ctx) -> d)
            .build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator orchestrator() {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition)
                .register(refundable).build();
    }

    @Test
    void theFirstRecoveryAfterAReplyMadeThisOrchestratorDriveASagaReportsItResumedOnce() {
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("payments", "charge-commands", Charge.class, earliest, (command, ctx) -> charges.add(ctx.message()));
        bus.subscribe("shipping", "ship-commands", Ship.class, earliest, (command, ctx) -> shipments.add(ctx.message()));
        SagaOrchestrator first = orchestrator();
        first.start(definition, "saga-1", null, new Data("a"));
        transport.drainAll();
        first.close(); // the process stops while the charge waits for its reply

        try (SagaOrchestrator restarted = orchestrator()) {
            // The charge's reply is read before the restarted process calls recover(): the saga goes on here.
            SagaMessages.reply(bus, charges.get(0), new Charged("c-1"));
            transport.drainAll();
            assertEquals(1, shipments.size(), "driven here: the next step's command sent");

            SagaOrchestrator.RecoveryReport report = restarted.recover();
            assertEquals(List.of("saga-1"), report.resumed(), "driven here now, and no report said so before");
            assertEquals(List.of(), report.unresolvable());
            assertEquals(List.of(), restarted.recover().resumed(), "reported once, as a saga a recovery adopts");

            CompletableFuture<SagaResult<Object>> result = restarted.result("saga-1").toCompletableFuture();
            SagaMessages.reply(bus, shipments.get(0), new Shipped("p-1"));
            transport.drainAll();
            assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
            assertEquals(new Data("p-1"), result.join().data());
        }
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, shipments.size(), "the next step's command sent once: the recovery re-sent nothing");
    }

    @Test
    void aSagaAnOperatorCallMadeThisOrchestratorDriveIsNotReportedResumedItsCallerHoldsItsResult() {
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("payments", "charge-commands", Charge.class, earliest, (command, ctx) -> charges.add(ctx.message()));
        bus.subscribe("refunds", "refund-commands", Refund.class, earliest, (command, ctx) -> refunds.add(ctx.message()));
        SagaOrchestrator first = orchestrator();
        first.start(refundable, "saga-2", null, new Data("b"));
        transport.drainAll();
        first.close(); // the process stops while the charge waits for its reply

        try (SagaOrchestrator restarted = orchestrator()) {
            // The operator cancels the saga before recover(): its run here compensates it, waiting for the refund's reply.
            restarted.cancel("saga-2");
            transport.drainAll();
            assertEquals(1, refunds.size(), "driven here: the refund's command sent");

            // Not a saga nobody was told this orchestrator drives: the call's caller was, and follows it by result().
            assertEquals(List.of(), restarted.recover().resumed());
            CompletableFuture<SagaResult<Object>> result = restarted.result("saga-2").toCompletableFuture();
            SagaMessages.reply(bus, refunds.get(0), new Refunded("b"));
            transport.drainAll();
            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
        }
        assertEquals(1, refunds.size(), "the refund's command sent once: the recovery re-sent nothing");
    }
}
