package io.streamsaga.jdbc.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EncodingException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.DuplicateOutboxMessageException;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Transactional messages: a remote step's command and the lifecycle events are written to the outbox in
 * their transition's transaction and published by the relay, so a crash right after the write neither loses
 * the command nor, past the participant's inbox, duplicates its effect. Subclasses pick the engine.
 */
abstract class SagaTransactionalMessagesTest {
    record Order(String orderId, String payment) {
    }

    record Charge(String orderId) {
    }

    record Charged(String paymentId) {
    }

    record Release(String orderId) {
    }

    record Released(String orderId) {
    }

    /** Jackson finds no property to write ("no serializer found"): a command the codec cannot encode. */
    static final class Opaque {
    }

    record OpaqueCharge(Opaque opaque) {
    }

    /** Its key is a lone surrogate, which JSON cannot read back in a field name: the codec refuses it. */
    record LoneSurrogateRelease(java.util.Map<String, String> lines) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    abstract JdbcSagaStore.Builder configure(JdbcSagaStore.Builder builder);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private EventBus bus;
    private JdbcSagaStore store;
    /** Every command delivery the participant saw, duplicates included. */
    private final List<String> deliveries = new CopyOnWriteArrayList<>();
    /** The participant's effects: past its inbox. */
    private final List<String> charges = new CopyOnWriteArrayList<>();
    private final List<String> lifecycle = new CopyOnWriteArrayList<>();
    /** The stock service's release commands, as delivered. */
    private final List<String> releases = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Order> saga = SagaDefinition.builder("order", Order.class).dataType("order-data")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
            .step("pay").command("payment-commands", (d, ctx) -> new Charge(d.orderId()))
            .onReply(Charged.class, (d, reply) -> new Order(d.orderId(), reply.paymentId()))
            .build();

    /** The payment is declined, so the reservation is released by a command to the stock service. */
    private final SagaDefinition<Order> declined = SagaDefinition.builder("declined-order", Order.class).dataType("order-data")
            .step("reserve").action((d, ctx) -> d)
            .compensationCommand("stock-commands", (d, ctx) -> new Release(d.orderId()))
            .onCompensationReply(Released.class, (d, reply) -> { })
            .step("pay").command("payment-commands", (d, ctx) -> new Charge(d.orderId()))
            .onReply(Charged.class, (d, reply) -> {
                throw new IllegalStateException("declined");
            })
            .build();

    @BeforeEach
    void setUp() {
        TestDatabase database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        store = configure(JdbcSagaStore.builder(database.dataSource())).transactionalMessages().build();
        bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class)
                .register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                .register("release", 1, Release.class).register("opaque-charge", 1, OpaqueCharge.class)
                .register("lone-surrogate-release", 1, LoneSurrogateRelease.class).register("released", 1, Released.class).build()).build();
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), Clock.systemUTC());
        var charge = inbox.<Charge>handler((command, ctx, connection) -> {
            charges.add(ctx.message().id());
            SagaMessages.reply(bus, ctx.message(), new Charged("p-" + command.orderId()));
        });
        bus.subscribe("payments", "payment-commands", Charge.class, (command, ctx) -> {
            deliveries.add(ctx.message().id());
            charge.handle(command, ctx);
        });
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> lifecycle.add(event.event()));
        bus.subscribe("stock", "stock-commands", Release.class, (command, ctx) -> {
            releases.add(ctx.message().id());
            SagaMessages.reply(bus, ctx.message(), new Released(command.orderId()));
        });
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator.Builder orchestrator(io.streamsaga.saga.spi.SagaStore sagaStore) {
        return SagaOrchestrator.builder().store(sagaStore).bus(bus).scheduler(scheduler).register(saga)
                .publishLifecycleEvents("saga-events");
    }

    private void relay() {
        OutboxRelay.builder(db.database().dataSource()).eventBus(bus).executor(Runnable::run).build().relayPending();
        transport.drainAll();
    }

    private long pendingInOutbox() {
        return JdbcOutbox.builder(db.database().dataSource()).codec(new JsonEventCodec(JsonEventCodec.defaultMapper(),
                TypeRegistry.empty())).build().pendingCount();
    }

    @Test
    void commandAndLifecycleEventsLeaveOnlyThroughTheOutbox() {
        try (SagaOrchestrator orchestrator = orchestrator(store).build()) {
            var result = orchestrator.start(saga, "s-1", "o-1", new Order("o-1", null)).toCompletableFuture();
            transport.drainAll();
            assertEquals(List.of(), deliveries, "the engine published nothing itself");
            assertEquals(List.of(), lifecycle);
            // started, step-completed(reserve) and the command of pay
            assertEquals(3, pendingInOutbox());

            relay(); // the command reaches the participant, whose reply completes the saga
            assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
            assertEquals("p-o-1", result.join().data().payment());
            relay(); // the events of the transitions since
        }
        assertEquals(List.of(commandId("s-1", "pay", false, 1)), charges);
        assertEquals(List.of("started", "step-completed", "step-completed", "completed"), lifecycle);
        assertEquals(0, pendingInOutbox());
    }

    @Test
    void aCrashRightAfterTheWaitingTransitionStillDeliversTheCommandOncePastTheInbox() throws SQLException {
        // writes: 1 started, 2 reserve started, 3 reserve succeeded, 4 pay waiting (with its command)
        CrashingSagaStore dying = new CrashingSagaStore(store, 4);
        try (SagaOrchestrator first = orchestrator(dying).build()) {
            assertThrows(SimulatedCrash.class, () -> first.start(saga, "s-2", "o-2", new Order("o-2", null)));
        }
        assertEquals(StepStatus.WAITING, store.find("s-2").orElseThrow().step("pay").orElseThrow().status());

        relay(); // the dead process never published the command: the relay does
        assertEquals(List.of(commandId("s-2", "pay", false, 1)), deliveries);
        // The relay dies before marking the row sent: the command goes out again.
        try (Connection c = db.database().dataSource().getConnection(); Statement st = c.createStatement()) {
            st.executeUpdate("UPDATE ss_outbox SET status = 'PENDING' WHERE message_id = '" + commandId("s-2", "pay", false, 1) + "'");
        }
        relay();
        assertEquals(List.of(commandId("s-2", "pay", false, 1), commandId("s-2", "pay", false, 1)), deliveries, "at least once on the bus");

        try (SagaOrchestrator second = orchestrator(store).build()) {
            second.recover();
            transport.drainAll(); // the participant's reply, read from the earliest offset
            assertEquals(SagaOutcome.COMPLETED, second.result("s-2").toCompletableFuture().join().outcome());
            relay();
        }
        assertEquals(List.of(commandId("s-2", "pay", false, 1)), charges, "exactly once past the inbox");
        assertEquals(2, deliveries.size(), "recovery did not re-send: the outbox had the command");
        assertEquals(List.of("started", "step-completed", "step-completed", "completed"), lifecycle);
    }

    @Test
    void aCrashRightBeforeTheWaitingTransitionSendsNoCommandUntilRecoveryStoresOne() {
        CrashingSagaStore dying = new CrashingSagaStore(store, 4, true);
        try (SagaOrchestrator first = orchestrator(dying).build()) {
            assertThrows(SimulatedCrash.class, () -> first.start(saga, "s-3", "o-3", new Order("o-3", null)));
        }
        relay();
        assertEquals(List.of(), deliveries, "no command for a transition that was never stored");
        assertEquals(SagaStatus.RUNNING, store.find("s-3").orElseThrow().status());

        try (SagaOrchestrator second = orchestrator(store).build()) {
            second.recover();
            relay();
            assertEquals(SagaOutcome.COMPLETED, second.result("s-3").toCompletableFuture().join().outcome());
            relay();
        }
        assertEquals(List.of(commandId("s-3", "pay", false, 1)), deliveries);
        assertEquals(List.of(commandId("s-3", "pay", false, 1)), charges);
        assertTrue(lifecycle.containsAll(List.of("started", "completed")));
    }

    @Test
    void aRemoteCompensationsCommandLeavesThroughTheOutboxWithItsStart() {
        try (SagaOrchestrator orchestrator = orchestrator(store).register(declined).build()) {
            var result = orchestrator.start(declined, "s-4", "o-4", new Order("o-4", null)).toCompletableFuture();
            relay(); // pay's command out, its reply declines: the release starts, its command written with it
            assertEquals(StepStatus.COMPENSATING, store.find("s-4").orElseThrow().step("reserve").orElseThrow().status());
            assertEquals(List.of(), releases, "the engine published the compensation command itself");

            relay(); // the release command reaches the stock service, whose reply completes the compensation
            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
            relay();
        }
        assertEquals(List.of(commandId("s-4", "reserve", true, 1)), releases);
    }

    @Test
    void aSagaWithTheLongestIdTheStoreTakesSendsItsCommandsAndEventsThroughTheOutboxAndThePaymentsInbox() {
        // JdbcSagaStore takes saga ids of up to 200 characters, but the ids of the messages derived from one
        // (<saga id>/<created at>/<version>, <saga id>/<created at>/<step>/<attempt>, <saga id>/<created at>/<step>/compensation/<attempt>) did not fit
        // the outbox's and the inbox's message_id of 200: such a saga could not even start.
        String id = "s".repeat(200);
        try (SagaOrchestrator orchestrator = orchestrator(store).register(declined).build()) {
            var result = orchestrator.start(declined, id, "o-5", new Order("o-5", null)).toCompletableFuture();
            relay(); // pay's command out and through the payments inbox; its reply declines: the release starts
            relay(); // the release command reaches the stock service, whose reply completes the compensation
            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
            relay();
        }
        assertEquals(List.of(commandId(id, "pay", false, 1)), charges);
        assertEquals(List.of(commandId(id, "reserve", true, 1)), releases);
        assertEquals(List.of("started", "step-completed", "compensating", "compensated"), lifecycle);
    }

    @Test
    void aSagaIdUsedAgainAfterItsSagaWasPurgedGetsLifecycleEventIdsOfItsOwn() {
        // The orchestrator's lifecycle events, written by the store with their transitions, had the ids
        // <saga id>/<version>: a saga started under the id of one purged by retention repeated them, which the outbox
        // (message ids unique) refused while it kept the first saga's rows, so the second saga could not start.
        SagaDefinition<Order> local = SagaDefinition.builder("local-order", Order.class).dataType("order-data")
                .step("reserve").action((d, ctx) -> d).build();
        List<String> ids = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> ids.add(ctx.message().id()));
        try (SagaOrchestrator orchestrator = orchestrator(store).register(local).retention(Duration.ZERO).build()) {
            assertEquals(SagaOutcome.COMPLETED, orchestrator.start(local, "s-6", "o-6", new Order("o-6", null))
                    .toCompletableFuture().join().outcome());
            relay();
            scheduler.advance(Duration.ofSeconds(1));
            assertEquals(1, orchestrator.purgeFinished());

            assertEquals(SagaOutcome.COMPLETED, orchestrator.start(local, "s-6", "o-6", new Order("o-6", null))
                    .toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(List.of("started", "step-completed", "completed", "started", "step-completed", "completed"),
                lifecycle);
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    @Test
    void aSagaIdUsedAgainAfterItsSagaWasPurgedGetsCommandIdsOfItsOwnAndItsCommandPastThePaymentsInbox() {
        // A remote step's command, written to the outbox with its transition, had the id <saga id>/<step>/<attempt>:
        // a saga started under the id of one purged by retention repeated it, which the outbox (message ids unique)
        // refused while it kept the first saga's sent row, and which the participant's inbox would have taken for
        // the first saga's command, sent again, and skipped. The idempotency key header stays <saga id>/<step>.
        List<String> keys = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "payment-commands", Charge.class,
                (command, ctx) -> keys.add(ctx.message().headers().get(SagaMessages.IDEMPOTENCY_KEY)));
        try (SagaOrchestrator orchestrator = orchestrator(store).retention(Duration.ZERO).build()) {
            for (int run = 0; run < 2; run++) {
                var result = orchestrator.start(saga, "s-7", "o-7", new Order("o-7", null)).toCompletableFuture();
                relay(); // the command reaches the participant, whose reply completes the saga
                assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
                relay();
                scheduler.advance(Duration.ofSeconds(1));
                assertEquals(1, orchestrator.purgeFinished());
            }
        }

        assertEquals(2, charges.size(), "each saga's command past the inbox: " + charges);
        assertEquals(2, deliveries.stream().distinct().count(), "each command an id of its own: " + deliveries);
        assertEquals(List.of("s-7/pay", "s-7/pay"), keys, "the idempotency key as before");
    }

    /** The id of a command of the saga {@code sagaId} started now (the virtual clock). */
    private String commandId(String sagaId, String step, boolean compensation, int attempt) {
        return SagaMessages.commandId(sagaId, scheduler.clock().instant(), step, compensation, attempt);
    }

    /** The id of the lifecycle event of {@code version} of a saga started now ({@link SagaLifecycleEvent#messageId}). */
    private String lifecycleEventId(String sagaId, long version) {
        return sagaId + "/" + scheduler.clock().instant().truncatedTo(java.time.temporal.ChronoUnit.MICROS) + "/" + version;
    }

    @Test
    void aMessageIdTheOutboxHoldsAlreadyFailsTheWriteNamingTheOutboxRowNotAsAConcurrentUpdateOfTheSaga() {
        // Any unique violation of an insert was reported as the saga's: "a saga with this id is already stored", though
        // the saga id was free and the row the database refused was an outgoing message's in the outbox.
        Message taken = Message.builder("payment-commands").id("taken-id").key("s-8").type("charge")
                .payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build().append(c, taken));

        // at the start too a refusal (SagaStore: refused writes), which the engine fails the start with (see
        // aLifecycleEventIdTheOutboxHoldsAtASagasStartFailsTheStartWithANonRetriableRefusalNamingItAndStoresNothing)
        SagaWriteRefusedException onInsert = assertThrows(SagaWriteRefusedException.class,
                () -> store.insert(JdbcSagaStoreTest.saga("s-8", "o-8", SagaStatus.RUNNING, JdbcSagaStoreTest.T0, 1),
                        JdbcSagaStoreTest.transition("s-8", 1, TransitionType.SAGA_STARTED), List.of(taken)));
        assertEquals("taken-id", assertInstanceOf(DuplicateOutboxMessageException.class, onInsert.getCause()).messageId());
        assertTrue(onInsert.getMessage().contains("'taken-id'") && onInsert.getMessage().contains("payment-commands"),
                onInsert.getMessage());
        assertFalse(onInsert.isRetriable(), "the same write meets the same row again");
        assertTrue(store.find("s-8").isEmpty(), "nothing of the write is stored");

        store.insert(JdbcSagaStoreTest.saga("s-8", "o-8", SagaStatus.RUNNING, JdbcSagaStoreTest.T0, 1),
                JdbcSagaStoreTest.transition("s-8", 1, TransitionType.SAGA_STARTED), List.of());
        // at a later write, a refusal the engine does not retry (see the test after this one), the outbox's kept
        SagaWriteRefusedException onUpdate = assertThrows(SagaWriteRefusedException.class,
                () -> store.update(JdbcSagaStoreTest.saga("s-8", "o-8", SagaStatus.RUNNING, JdbcSagaStoreTest.T0, 2),
                        JdbcSagaStoreTest.transition("s-8", 2, TransitionType.STEP_WAITING), List.of(taken)));
        assertEquals("taken-id", assertInstanceOf(DuplicateOutboxMessageException.class, onUpdate.getCause()).messageId());
        assertTrue(onUpdate.getMessage().contains("'taken-id'") && onUpdate.getMessage().contains("payment-commands"),
                onUpdate.getMessage());
        assertEquals(1, store.find("s-8").orElseThrow().version(), "nothing of the write is stored");
        // the saga's own id taken is still the concurrent insert it was
        assertThrows(ConcurrentSagaUpdateException.class,
                () -> store.insert(JdbcSagaStoreTest.saga("s-8", "o-8", SagaStatus.RUNNING, JdbcSagaStoreTest.T0, 1),
                        JdbcSagaStoreTest.transition("s-8", 1, TransitionType.SAGA_STARTED), List.of()));
    }

    @Test
    void aCommandIdTheOutboxHoldsAtALaterWriteLeavesTheSagaNeedingAttentionNamingItNotRetriedByEveryRecovery() {
        // The outbox refusing a message id at a write after the saga's start (a row with the id of its command, left by
        // a restore of the outbox or written by the application's own SQL) reached the engine as any store failure: the
        // result failed with a retriable SagaException, the saga stayed running, and every recover() ran the step again,
        // to meet the same row again, for ever.
        String id = commandId("s-10", "pay", false, 1);
        Message taken = Message.builder("payment-commands").id(id).key("s-10").type("charge")
                .payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build().append(c, taken));

        long version;
        try (SagaOrchestrator orchestrator = orchestrator(store).build()) {
            var result = orchestrator.start(saga, "s-10", "o-10", new Order("o-10", null)).toCompletableFuture().join();
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
            assertEquals("pay", result.failure().step());
            assertEquals(SagaWriteRefusedException.class.getName(), result.failure().errorClass());
            assertTrue(result.failure().message().contains("'" + id + "'")
                    && result.failure().message().contains("payment-commands"), result.failure().message());
            SagaWriteRefusedException refusal = assertInstanceOf(SagaWriteRefusedException.class, result.exception());
            assertFalse(refusal.isRetriable());
            assertEquals(id, assertInstanceOf(DuplicateOutboxMessageException.class, refusal.getCause()).messageId(),
                    "the outbox's own exception kept");
            SagaInstance stored = store.find("s-10").orElseThrow();
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
            assertNotEquals(StepStatus.WAITING, stored.step("pay").orElseThrow().status(), "as stored before the refused write");
            version = stored.version();
        }
        try (SagaOrchestrator second = orchestrator(store).build()) {
            assertEquals(List.of(), second.recover().resumed(), "left alone, for an operator");
        }
        assertEquals(version, store.find("s-10").orElseThrow().version(), "nothing written by the recovery");
        assertEquals(List.of(id), outboxMessageIdsTo("payment-commands"), "only the row that was there");

        db.database().execute("DELETE FROM ss_outbox WHERE message_id = '" + id + "'"); // the operator's repair
        try (SagaOrchestrator operator = orchestrator(store).build()) {
            var retried = operator.retryCompensation("s-10").toCompletableFuture();
            relay(); // the command reaches the participant, whose reply completes the saga
            assertEquals(SagaOutcome.COMPLETED, retried.join().outcome());
        }
        assertEquals(1, charges.size(), "the saga's command, once: " + charges);
    }

    @Test
    void aLifecycleEventIdTheOutboxHoldsAtALaterWriteLeavesTheSagaNeedingAttentionWithoutThatEventNotRunningForRecover() {
        // The write at version 3 (reserve succeeded) carries the lifecycle event with the id of that version, which the
        // outbox holds (a restore of the outbox): refused. The needs-attention write that follows is of the same version,
        // so its 'failed' event had the same id, refused again: the saga stayed running as stored before, for every
        // recover() to run it into the same row again, for ever.
        String id = lifecycleEventId("s-11", 3);
        Message taken = Message.builder("saga-events").id(id).key("s-11").type("restored")
                .payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build().append(c, taken));

        long version;
        try (SagaOrchestrator orchestrator = orchestrator(store).build()) {
            var result = orchestrator.start(saga, "s-11", "o-11", new Order("o-11", null)).toCompletableFuture().join();
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
            assertEquals("reserve", result.failure().step());
            assertEquals(SagaWriteRefusedException.class.getName(), result.failure().errorClass());
            assertTrue(result.failure().message().contains("'" + id + "'"), result.failure().message());
            SagaInstance stored = store.find("s-11").orElseThrow();
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stored.status());
            assertEquals(3, stored.version(), "the needs-attention write stored, of the refused write's version");
            version = stored.version();
        }
        try (SagaOrchestrator second = orchestrator(store).build()) {
            assertEquals(List.of(), second.recover().resumed(), "left alone, for an operator");
        }
        assertEquals(version, store.find("s-11").orElseThrow().version(), "nothing written by the recovery");
        assertEquals(List.of(id, lifecycleEventId("s-11", 1)), outboxMessageIdsTo("saga-events"), // in the order written
                "the saga's 'started' event and the row that was there: the 'failed' event of that id is not written");
    }

    @Test
    void aLifecycleEventIdTheOutboxHoldsAtASagasStartFailsTheStartWithANonRetriableRefusalNamingItAndStoresNothing() {
        // The start's write carries the 'started' event of version 1, whose id the outbox holds (a restore of the
        // outbox): the store threw its DuplicateOutboxMessageException, which the engine took for a store failure, so the
        // caller got a retriable "saga store failed" SagaException and, retrying the start, met the same row for ever.
        String id = lifecycleEventId("s-12", 1);
        Message taken = Message.builder("saga-events").id(id).key("s-12").type("restored")
                .payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build().append(c, taken));

        try (SagaOrchestrator orchestrator = orchestrator(store).build()) {
            for (int attempt = 1; attempt <= 2; attempt++) { // a caller retrying the start meets the same refusal
                var start = orchestrator.start(saga, "s-12", "o-12", new Order("o-12", null)).toCompletableFuture();
                var thrown = assertThrows(java.util.concurrent.CompletionException.class, start::join);
                SagaWriteRefusedException refusal = assertInstanceOf(SagaWriteRefusedException.class, thrown.getCause(),
                        "the store's refusal itself, not a store failure");
                assertFalse(refusal.isRetriable(), "the same start meets the same row again");
                assertTrue(refusal.getMessage().contains("'" + id + "'") && refusal.getMessage().contains("saga-events"),
                        refusal.getMessage());
                assertEquals(id, assertInstanceOf(DuplicateOutboxMessageException.class, refusal.getCause()).messageId(),
                        "the outbox's own exception kept");
                assertTrue(store.find("s-12").isEmpty(), "nothing of the start is stored");
            }
            assertEquals(List.of(), orchestrator.recover().resumed(), "nothing for recover() either");
        }
        assertEquals(List.of(id), outboxMessageIdsTo("saga-events"), "only the row that was there");
        assertEquals(List.of(), charges);
    }

    private List<String> outboxMessageIdsTo(String topic) {
        return JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build()
                .rows(io.streamsaga.jdbc.outbox.OutboxRow.Status.PENDING, 100).stream()
                .filter(row -> row.message().topic().equals(topic)).map(row -> row.message().id()).toList();
    }

    @Test
    void anOutboxRowsSequenceHandedOutAgainFailsTheInsertAsADatabaseFailureNotAsTheSagaIdTaken() throws SQLException {
        // Any unique violation of an insert but the outbox's message id was taken for the saga's: a row whose seq the
        // outbox's identity hands out next (written with an explicit seq, by a restore say) made a saga's start fail
        // as "a saga with this id is already stored" though no saga had its id.
        Message probe = Message.builder("payment-commands").id("probe").key("p").type("charge")
                .payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(bus.codec()).build().append(c, probe));
        long next = outboxSequence("probe") + 1;
        for (long seq = next; seq < next + 2; seq++) { // two: group commit writes a batch's write again alone
            db.database().execute("INSERT INTO ss_outbox (seq, message_id, topic, message_key, event_type,"
                    + " event_version, payload, headers, created_at, status, attempts) OVERRIDING SYSTEM VALUE VALUES ("
                    + seq + ", 'restored-" + seq + "', 'payment-commands', 'k', 'charge', 1, NULL, '{}',"
                    + " CURRENT_TIMESTAMP, 'SENT', 0)");
        }
        Message fresh = Message.builder("payment-commands").id("fresh-id").key("s-9").type("charge")
                .payload(new byte[]{'{', '}'}).build();

        io.streamsaga.jdbc.JdbcException refused = assertThrows(io.streamsaga.jdbc.JdbcException.class,
                () -> store.insert(JdbcSagaStoreTest.saga("s-9", "o-9", SagaStatus.RUNNING, JdbcSagaStoreTest.T0, 1),
                        JdbcSagaStoreTest.transition("s-9", 1, TransitionType.SAGA_STARTED), List.of(fresh)));
        assertFalse(refused instanceof DuplicateOutboxMessageException, refused.getMessage());
        assertTrue(store.find("s-9").isEmpty(), "nothing of the write is stored");
    }

    /** The seq of the outbox row holding {@code messageId}. */
    private long outboxSequence(String messageId) throws SQLException {
        try (Connection c = db.database().dataSource().getConnection();
             var ps = c.prepareStatement("SELECT seq FROM ss_outbox WHERE message_id = ?")) {
            ps.setString(1, messageId);
            try (var rs = ps.executeQuery()) {
                assertTrue(rs.next(), messageId);
                return rs.getLong(1);
            }
        }
    }

    private long outboxRowsTo(String topic) throws SQLException {
        try (Connection c = db.database().dataSource().getConnection();
             var ps = c.prepareStatement("SELECT COUNT(*) FROM ss_outbox WHERE topic = ?")) {
            ps.setString(1, topic);
            try (var rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    @Test
    void aRemoteStepsCommandTheCodecCannotEncodeFailsTheStepAndTheSagaCompensatesWithNothingLeftForRecovery()
            throws SQLException {
        SagaDefinition<Order> opaque = SagaDefinition.builder("opaque-order", Order.class).dataType("order-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("pay").command("payment-commands", (d, ctx) -> new OpaqueCharge(new Opaque()))
                .onReply(Charged.class, (d, reply) -> d)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(store).register(opaque).build()) {
            var result = orchestrator.start(opaque, "s-6", "o-6", new Order("o-6", null)).toCompletableFuture();
            relay();
            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
            assertInstanceOf(EncodingException.class, result.join().exception());
            assertEquals(EncodingException.class.getName(), result.join().failure().errorClass());
            assertTrue(result.join().failure().message().contains(OpaqueCharge.class.getName()));
        }
        assertEquals(1, store.find("s-6").orElseThrow().step("pay").orElseThrow().attempts(), "not retried: bad input");
        assertEquals(0, outboxRowsTo("payment-commands"));
        try (SagaOrchestrator second = orchestrator(store).register(opaque).build()) {
            assertEquals(List.of(), second.recover().resumed());
        }
        assertEquals(List.of(), deliveries);
    }

    @Test
    void aRemoteCompensationsCommandTheCodecCannotEncodeFailsTheCompensationAndIsNeverPublishedPastTheOutbox()
            throws SQLException {
        // The engine published it on the bus itself instead, bypassing the outbox: the stock service got it.
        SagaDefinition<Order> unreleasable = SagaDefinition.builder("unreleasable-order", Order.class).dataType("order-data")
                .step("reserve").action((d, ctx) -> d)
                .compensationCommand("stock-commands", (d, ctx) -> new LoneSurrogateRelease(java.util.Map.of("\uD800", "1")))
                .onCompensationReply(Released.class, (d, reply) -> { })
                .step("pay").action((d, ctx) -> {
                    throw new IllegalStateException("declined");
                })
                .build();
        List<String> badReleases = new CopyOnWriteArrayList<>();
        bus.subscribe("stock-bad", "stock-commands", LoneSurrogateRelease.class,
                (command, ctx) -> badReleases.add(ctx.message().id()));
        try (SagaOrchestrator orchestrator = orchestrator(store).register(unreleasable).build()) {
            var result = orchestrator.start(unreleasable, "s-7", "o-7", new Order("o-7", null)).toCompletableFuture();
            relay();
            assertEquals(List.of(), badReleases, "the engine published the command itself");
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.join().outcome());
            assertEquals(EncodingException.class.getName(), result.join().compensationFailure().errorClass());
            assertTrue(result.join().compensationFailure().message().contains(LoneSurrogateRelease.class.getName()));
        }
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-7").orElseThrow().status());
        assertEquals(1, store.find("s-7").orElseThrow().step("reserve").orElseThrow().compensationAttempts(),
                "not retried: bad input");
        assertEquals(0, outboxRowsTo("stock-commands"));
        try (SagaOrchestrator second = orchestrator(store).register(unreleasable).build()) {
            assertEquals(List.of(), second.recover().resumed());
        }
        assertEquals(List.of(), badReleases);
    }
}
