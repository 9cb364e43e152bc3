package io.streamsaga.jdbc.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.SagaVersionNotDeployedException;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The on-call runbook of an application running its order saga on two service instances (two orchestrators with
 * node ids of their own over one database, each with its own bus on one transport, lifecycle events through the
 * outbox, metrics per instance), as docs/sagas.md and docs/durability.md describe it: a saga whose compensation
 * keeps failing, found, explained and retried from the other instance; a node that dies while its remote step
 * waits, its saga finished once by the other node's sweep; version 2 deployed while version-1 sagas wait for
 * replies; retention of finished sagas and of the outbox's sent rows. Subclasses pick PostgreSQL or H2.
 */
abstract class OnCallRunbookTest {
    record Order(String orderId, String paymentId) {
    }

    record OrderV2(String orderId, String currency, String paymentId) {
    }

    record Charge(String orderId) {
    }

    record Charged(String paymentId) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private final List<SagaLifecycleEvent> lifecycle = new CopyOnWriteArrayList<>();
    /** The payment service's charges, deduplicated by the command's idempotency key as the saga contract asks. */
    private final Set<String> charged = ConcurrentHashMap.newKeySet();
    private final List<String> chargeDeliveries = new CopyOnWriteArrayList<>();
    private final AtomicBoolean inventoryDown = new AtomicBoolean(true);
    private EventBus participants;

    private final SagaDefinition<Order> stuck = SagaDefinition.builder("order-saga", Order.class).dataType("order-data")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                if (inventoryDown.get()) {
                    throw new IllegalStateException("inventory service down");
                }
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    private final SagaDefinition<Order> v1 = SagaDefinition.builder("pay-saga", Order.class).version(1).dataType("pay-data")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
            .step("pay").command("payment-commands", (d, ctx) -> new Charge(d.orderId()))
            .onReply(Charged.class, (d, reply) -> new Order(d.orderId(), reply.paymentId()))
            .timeout(Duration.ofHours(1))
            .build();

    private final SagaDefinition<OrderV2> v2 = SagaDefinition.builder("pay-saga", OrderV2.class).version(2).dataType("pay-data-v2")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
            .step("pay").command("payment-commands", (d, ctx) -> new Charge(d.orderId()))
            .onReply(Charged.class, (d, reply) -> new OrderV2(d.orderId(), d.currency(), reply.paymentId() + " in " + d.currency()))
            .timeout(Duration.ofHours(1))
            .build();

    @BeforeEach
    void setUp() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        participants = bus();
        participants.subscribe("payments", "payment-commands", Charge.class, (command, ctx) -> {
            chargeDeliveries.add(ctx.message().id());
            charged.add(ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow());
            SagaMessages.reply(participants, ctx.message(), new Charged("p-" + command.orderId()));
        });
        participants.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> lifecycle.add(event));
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
        transport.close();
        scheduler.close();
    }

    /** A service instance's own bus on the shared transport (one broker). */
    private EventBus bus() {
        EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class)
                .register("charge", 1, Charge.class).register("charged", 1, Charged.class).build()).build();
        closeables.add(bus);
        return bus;
    }

    /** A service instance's orchestrator: its own store object over the shared database, lifecycle events to the outbox. */
    private SagaOrchestrator node(SagaOrchestrator.Builder builder) {
        SagaOrchestrator o = builder.store(JdbcSagaStore.builder(db.database().dataSource())
                .lifecycleEventsToOutbox("saga-events").build()).build();
        closeables.add(o);
        return o;
    }

    private void relay(EventBus bus) {
        OutboxRelay.builder(db.database().dataSource()).eventBus(bus).executor(Runnable::run).build().relayPending();
        transport.drainAll();
    }

    @Test
    void aSagaWhoseCompensationKeepsFailingIsFoundExplainedAndRetriedFromTheOtherInstanceWithEventsAndMetricsFollowing() {
        InMemoryMetrics metricsA = new InMemoryMetrics();
        InMemoryMetrics metricsB = new InMemoryMetrics();
        EventBus busA = bus();
        EventBus busB = bus();
        SagaOrchestrator a = node(SagaOrchestrator.builder().bus(busA).scheduler(scheduler).metrics(metricsA).register(stuck)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        SagaOrchestrator b = node(SagaOrchestrator.builder().bus(busB).scheduler(scheduler).metrics(metricsB).register(stuck)
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60)));

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION,
                a.start(stuck, "s-1", "order-1", new Order("order-1", null)).toCompletableFuture().join().outcome());
        scheduler.advance(Duration.ofMinutes(2)); // few heartbeat writes: each is a database round trip

        // The runbook, on instance B: what needs attention, by business key, why.
        assertEquals(List.of("s-1"), b.findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).stream().map(SagaInstance::sagaId).toList());
        assertEquals(List.of(SagaStatus.FAILED_NEEDS_ATTENTION),
                b.findByBusinessKey("order-1").stream().map(SagaInstance::status).toList());
        assertEquals(List.of(), b.findUnfinishedLongerThan(Duration.ofMinutes(1)), "needing attention is not 'unfinished'");
        SagaInstance failed = b.find("s-1").orElseThrow();
        assertEquals("orders-a", failed.owner());
        assertEquals("card declined", failed.failure().message());
        assertEquals("charge", failed.failure().step());
        assertEquals("inventory service down", failed.compensationFailure().message());
        assertEquals("reserve", failed.compensationFailure().step());
        String diagram = b.sequenceDiagram("s-1");
        assertTrue(diagram.contains("charge--xO: failed: IllegalStateException: card declined"), diagram);
        assertTrue(diagram.contains("reserve--xO: compensation failed"), diagram);
        assertTrue(diagram.contains("Note over O: failed, needs attention"), diagram);

        // A retry from B while the inventory is still down: needs attention again; then fixed, compensated.
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, b.retryCompensation("s-1").toCompletableFuture().join().outcome());
        inventoryDown.set(false);
        assertEquals(SagaOutcome.COMPENSATED, b.retryCompensation("s-1").toCompletableFuture().join().outcome());
        SagaInstance compensated = b.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPENSATED, compensated.status());
        assertEquals("orders-b", compensated.owner(), "an operator call stamps the caller's node id");
        assertEquals(SagaOutcome.COMPENSATED, a.result("s-1").toCompletableFuture().join().outcome(),
                "instance A answers from the store");
        String retried = b.sequenceDiagram("s-1");
        assertEquals(2, retried.split("Note over O: operator retry", -1).length - 1, retried);
        assertTrue(retried.contains("reserve: compensate (attempt 3)"), retried);

        assertEquals(1, metricsA.sagasStarted("order-saga"));
        assertEquals(1, metricsA.sagasFinished("order-saga", "failed"));
        assertEquals(1, metricsB.sagasFinished("order-saga", "failed"), "B's first retry failed again");
        assertEquals(1, metricsB.sagasFinished("order-saga", "compensated"));
        assertEquals(0, metricsA.sagasFinished("order-saga", "compensated"));

        relay(busB);
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "compensating", "failed",
                "compensating", "compensated"), lifecycle.stream().map(SagaLifecycleEvent::event).toList());

        // Another saga stuck the same way is resolved by hand from B, the 'resolved' event closing what 'failed' opened.
        inventoryDown.set(true);
        a.start(stuck, "s-2", "order-2", new Order("order-2", null)).toCompletableFuture().join();
        b.markResolved("s-2");
        assertEquals(SagaStatus.RESOLVED, a.find("s-2").orElseThrow().status());
        assertEquals(1, metricsB.sagasFinished("order-saga", "resolved"));
        lifecycle.clear();
        relay(busA);
        assertEquals(List.of("started", "step-completed", "compensating", "failed", "resolved"),
                lifecycle.stream().map(SagaLifecycleEvent::event).toList());
    }

    @Test
    void aNodeThatDiesWhileItsRemoteStepWaitsHasItsSagaFinishedOnceByTheOtherNodesSweepAfterTheLease() {
        InMemoryMetrics metricsB = new InMemoryMetrics();
        VirtualScheduler deadClock = new VirtualScheduler(); // node A's clock stops with it: no heartbeat, no timer
        closeables.add(deadClock);
        EventBus busA = bus();
        SagaOrchestrator a = node(SagaOrchestrator.builder().bus(busA).scheduler(deadClock).register(v1)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        a.start(v1, "s-1", "order-1", new Order("order-1", null));
        assertEquals(SagaStatus.RUNNING, a.find("s-1").orElseThrow().status());
        busA.close(); // the process dies: its consumer leaves the group; its orchestrator never closes

        SagaOrchestrator b = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).metrics(metricsB).register(v1)
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                .recoverEvery(Duration.ofSeconds(30), Duration.ZERO));
        assertEquals(List.of(), b.recover().resumed(), "node A's lease has not run out yet");
        scheduler.advance(Duration.ofSeconds(90)); // two sweeps: the second one after the lease adopts the saga
        transport.drainAll(); // the payment service gets A's command and B's resent one (same id), replies to both

        SagaInstance done = b.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, done.status());
        assertEquals("p-order-1", ((com.fasterxml.jackson.databind.JsonNode) done.data()).get("paymentId").asText());
        assertEquals("orders-b", done.owner());
        assertEquals(2, chargeDeliveries.size());
        assertEquals(1, Set.copyOf(chargeDeliveries).size(), "the resent command has the first one's id");
        assertEquals(Set.of("s-1/pay"), charged);
        List<TransitionType> history = b.history("s-1").stream().map(SagaTransition::type).toList();
        assertEquals(1, history.stream().filter(TransitionType.SAGA_ADOPTED::equals).count(), history.toString());
        assertEquals(1, history.stream().filter(TransitionType.SAGA_COMPLETED::equals).count(), history.toString());
        assertTrue(b.sequenceDiagram("s-1").contains("Note over O: adopted"));
        assertEquals(1, metricsB.sagasFinished("pay-saga", "completed"));
    }

    @Test
    void aNodeThatDiesAtAWriteMidSagaHasItFinishedByTheOtherNodeAfterTheLeaseWithEachLifecycleEventOnce() {
        Set<String> applied = ConcurrentHashMap.newKeySet();
        List<String> effects = new CopyOnWriteArrayList<>();
        SagaDefinition<Order> shipping = SagaDefinition.builder("ship-saga", Order.class).dataType("ship-data")
                .step("reserve").action((d, ctx) -> { effects.add("reserve"); applied.add(ctx.idempotencyKey()); return d; })
                .step("pack").action((d, ctx) -> { effects.add("pack"); applied.add(ctx.idempotencyKey()); return d; })
                .step("ship").action((d, ctx) -> { effects.add("ship"); applied.add(ctx.idempotencyKey()); return d; })
                .build();
        EventBus busA = bus();
        CrashingSagaStore dying = new CrashingSagaStore(JdbcSagaStore.builder(db.database().dataSource())
                .lifecycleEventsToOutbox("saga-events").build(), 5, true); // dies as it writes pack's outcome (one write a transition)
        SagaOrchestrator a = SagaOrchestrator.builder().store(dying).bus(busA).scheduler(scheduler).register(shipping)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)).build();
        closeables.add(a);
        assertThrows(SimulatedCrash.class, () -> a.start(shipping, "s-1", "order-1", new Order("order-1", null)));
        busA.close();
        InMemoryMetrics metricsB = new InMemoryMetrics();
        EventBus busB = bus();
        SagaOrchestrator b = node(SagaOrchestrator.builder().bus(busB).scheduler(scheduler).metrics(metricsB).register(shipping)
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                .recoverEvery(Duration.ofSeconds(30), Duration.ZERO));
        assertEquals(List.of(), b.recover().resumed(), "node A's lease has not run out yet");
        scheduler.advance(Duration.ofSeconds(5));
        assertEquals(List.of("s-1"), b.findUnfinishedLongerThan(Duration.ofSeconds(1)).stream().map(SagaInstance::sagaId).toList(),
                "the on-call's query for stuck sagas");

        scheduler.advance(Duration.ofSeconds(85));

        SagaInstance done = b.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, done.status());
        assertEquals("orders-b", done.owner());
        assertEquals(List.of("reserve", "pack", "pack", "ship"), effects, "pack's outcome was lost with node A: run again");
        assertEquals(Set.of("s-1/reserve", "s-1/pack", "s-1/ship"), applied);
        assertEquals(1, metricsB.sagasFinished("ship-saga", "completed"));
        relay(busB);
        assertEquals(List.of("started", "step-completed", "step-completed", "step-completed", "completed"),
                lifecycle.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(List.of("reserve", "pack", "ship"), lifecycle.stream().map(SagaLifecycleEvent::step)
                .filter(java.util.Objects::nonNull).toList());
    }

    @Test
    void versionTwoDeployedWhileAVersionOneSagaWaitsForItsReplyTakesTheReplyThroughTheUpcaster() {
        EventBus busA = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(busA).scheduler(scheduler).register(v1)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        old.start(v1, "s-1", "order-1", new Order("order-1", null));
        old.close(); // redeployed
        busA.close();
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v2)
                .dataUpcaster("pay-saga", 1, json -> json.put("currency", "EUR"))
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        transport.drainAll(); // the reply to version 1's command reaches the upgraded instance before its recover()

        SagaInstance done = upgraded.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, done.status());
        assertEquals(2, done.definitionVersion());
        assertEquals("p-order-1 in EUR", ((com.fasterxml.jackson.databind.JsonNode) done.data()).get("paymentId").asText());
        assertTrue(upgraded.history("s-1").stream().map(SagaTransition::type).anyMatch(TransitionType.SAGA_MIGRATED::equals));
        assertEquals(Set.of("s-1/pay"), charged);
    }

    @Test
    void versionTwoDeployedWithoutAnUpcasterBesideVersionOneLetsTheVersionOneSagaFinishUnderVersionOne() {
        EventBus busA = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(busA).scheduler(scheduler).register(v1));
        old.start(v1, "s-1", "order-1", new Order("order-1", null));
        old.close();
        busA.close();
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2));
        assertEquals(List.of("s-1"), upgraded.recover().resumed());
        upgraded.start(v2, "s-2", "order-2", new OrderV2("order-2", "USD", null));
        transport.drainAll();

        SagaInstance first = upgraded.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, first.status());
        assertEquals(1, first.definitionVersion());
        assertEquals("p-order-1", ((com.fasterxml.jackson.databind.JsonNode) first.data()).get("paymentId").asText());
        SagaInstance second = upgraded.find("s-2").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, second.status());
        assertEquals(2, second.definitionVersion());
        assertEquals("p-order-2 in USD", ((com.fasterxml.jackson.databind.JsonNode) second.data()).get("paymentId").asText());
    }

    @Test
    void versionTwoDeployedWithoutAnUpcasterAndWithoutVersionOneLeavesTheWaitingSagaUnresolvableNotLost() {
        EventBus busA = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(busA).scheduler(scheduler).register(v1));
        old.start(v1, "s-1", "order-1", new Order("order-1", null));
        old.close();
        busA.close();
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v2));
        SagaOrchestrator.RecoveryReport report = upgraded.recover();
        assertEquals(List.of("s-1"), report.unresolvable());
        assertTrue(report.unresolvableReasons().get("s-1").contains("version 1"), report.unresolvableReasons().toString());
        SagaInstance waiting = upgraded.find("s-1").orElseThrow();
        assertEquals(SagaStatus.RUNNING, waiting.status());
        assertEquals(1, waiting.definitionVersion());

        // Version 1 registered again (a fixed release replacing that one): the saga goes on under it.
        upgraded.close();
        SagaOrchestrator fixed = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2));
        assertEquals(List.of("s-1"), fixed.recover().resumed());
        transport.drainAll();
        assertEquals(SagaStatus.COMPLETED, fixed.find("s-1").orElseThrow().status());
        assertEquals(Set.of("s-1/pay"), charged);
    }

    @Test
    void finishedSagasArePurgedByPurgeEveryAfterTheRetentionAndTheOutboxsSentRowsByPurgeSent() {
        inventoryDown.set(false);
        EventBus busA = bus();
        SagaOrchestrator a = node(SagaOrchestrator.builder().bus(busA).scheduler(scheduler).register(stuck)
                .retention(Duration.ofDays(1)).purgeEvery(Duration.ofHours(1)));
        a.start(stuck, "old", "order-1", new Order("order-1", null)).toCompletableFuture().join();
        inventoryDown.set(true);
        a.start(stuck, "attention", "order-2", new Order("order-2", null)).toCompletableFuture().join();
        scheduler.advance(Duration.ofHours(23));
        inventoryDown.set(false);
        a.start(stuck, "recent", "order-3", new Order("order-3", null)).toCompletableFuture().join();
        relay(busA);
        JdbcOutbox outbox = JdbcOutbox.builder(db.database().dataSource()).eventBus(busA).build();
        assertEquals(0, outbox.pendingCount());

        scheduler.advance(Duration.ofHours(2)); // "old" finished 25 h ago: the hourly purge deletes it
        assertTrue(a.find("old").isEmpty());
        assertTrue(a.history("old").isEmpty());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, a.find("attention").orElseThrow().status(), "kept for the operator");
        assertEquals(SagaStatus.COMPENSATED, a.find("recent").orElseThrow().status());

        int sent = outbox.rows(io.streamsaga.jdbc.outbox.OutboxRow.Status.SENT, 1000).size();
        assertTrue(sent >= 12, "every lifecycle event relayed is a sent row: " + sent);
        assertEquals(sent, outbox.purgeSent(scheduler.now(), 1000));
        assertEquals(List.of(), outbox.rows(io.streamsaga.jdbc.outbox.OutboxRow.Status.SENT, 1000));
    }

    @Test
    void aReplyReachingAnInstanceThatLacksTheSagasVersionIsDeadLetteredAndTheSagaWaitsUntilTheDeadLetterIsReplayed() {
        List<io.streamsaga.message.Message> deadLetters = new CopyOnWriteArrayList<>();
        participants.subscribe("ops-dlt", "saga-replies.DLT", io.streamsaga.message.Message.class,
                (m, ctx) -> deadLetters.add(m));
        // A rolling deploy: the old instance (version 1 only) and the new one (version 2 only) share the reply group.
        EventBus oldBus = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(oldBus).scheduler(scheduler).register(v1));
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v2));
        for (int i = 0; i < 8; i++) {
            upgraded.start(v2, "s-" + i, "order-" + i, new OrderV2("order-" + i, "USD", null));
        }
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5)); // the bus's retries of the replies the old instance cannot take
        transport.drainAll();
        List<String> waiting = upgraded.findUnfinishedLongerThan(Duration.ZERO).stream().map(SagaInstance::sagaId).sorted().toList();
        assertTrue(!waiting.isEmpty(), "some replies reached the old instance");
        assertEquals(waiting, deadLetters.stream().map(m -> m.sagaId().orElseThrow()).sorted().toList(),
                "each reply the old instance could not take is a dead letter naming its saga");
        String reason = deadLetters.get(0).header("dlt-error-message").orElseThrow();
        assertTrue(reason.contains("whose definition is not registered here: definition 'pay-saga' version 2 is not registered,"
                + " nor a later one"), "the dead letter names the version the instance lacks: " + reason);
        assertEquals(8, charged.size(), "every payment was taken");

        old.close(); // the old instance is upgraded in its turn, before the steps' timeout
        oldBus.close();
        deadLetters.forEach(m -> participants.publish(m.withTopic("saga-replies")));
        transport.drainAll();
        for (int i = 0; i < 8; i++) {
            assertEquals(SagaStatus.COMPLETED, upgraded.find("s-" + i).orElseThrow().status(), "s-" + i);
        }
        assertEquals(8, charged.size());
    }

    @Test
    void withOwnershipVersionTwoIsRefusedWhileAVersionOneOnlyNodeIsLiveAndStartsAndFinishesOnceThatNodeIsUpgraded() {
        List<io.streamsaga.message.Message> deadLetters = new CopyOnWriteArrayList<>();
        participants.subscribe("ops-dlt", "saga-replies.DLT", io.streamsaga.message.Message.class,
                (m, ctx) -> deadLetters.add(m));
        // The same rolling deploy with ownership: each node advertises its versions with its heartbeat.
        EventBus oldBus = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(oldBus).scheduler(scheduler).register(v1)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2)
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60)));

        SagaVersionNotDeployedException refused = assertThrows(SagaVersionNotDeployedException.class,
                () -> upgraded.start(v2, "v2-0", "order-0", new OrderV2("order-0", "USD", null)));
        assertEquals(List.of("orders-a"), refused.nodes());
        assertEquals(java.util.OptionalInt.of(1), refused.newestVersionOnEveryNode());
        assertTrue(upgraded.find("v2-0").isEmpty(), "nothing stored, no command sent");
        for (int i = 0; i < 8; i++) { // the new release still starts version 1, whose replies either node takes
            upgraded.start(v1, "v1-" + i, "order-" + i, new Order("order-" + i, null));
        }
        transport.drainAll();
        assertEquals(8, upgraded.findByStatus(SagaStatus.COMPLETED).size());

        old.close(); // node a is upgraded in its turn: restarted under its id with both versions
        oldBus.close();
        node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        scheduler.advance(Duration.ofSeconds(10)); // node b reads the nodes' versions with its next heartbeat
        for (int i = 0; i < 8; i++) {
            upgraded.start(v2, "v2-" + i, "order-" + i, new OrderV2("order-" + i, "USD", null));
        }
        transport.drainAll();
        for (int i = 0; i < 8; i++) {
            SagaInstance done = upgraded.find("v2-" + i).orElseThrow();
            assertEquals(SagaStatus.COMPLETED, done.status(), "v2-" + i);
            assertEquals(2, done.definitionVersion());
        }
        assertEquals(List.of(), deadLetters, "no reply reached a node lacking its saga's version");
        assertEquals(16, charged.size());
    }

    @Test
    void aReplyDeadLetteredOnAnOldInstanceLeavesItsSagaToItsStepsTimeoutWhichCompensatesItThoughThePaymentWasTaken() {
        EventBus oldBus = bus();
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(oldBus).scheduler(scheduler).register(v1));
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v2));
        for (int i = 0; i < 8; i++) {
            upgraded.start(v2, "s-" + i, "order-" + i, new OrderV2("order-" + i, "USD", null));
        }
        transport.drainAll();
        List<String> waiting = upgraded.findUnfinishedLongerThan(Duration.ZERO).stream().map(SagaInstance::sagaId).toList();
        assertTrue(!waiting.isEmpty(), "some replies reached the old instance");

        // Nobody replays the dead letters: each step's timeout fails its attempt, a retry's reply goes the same way.
        for (int hour = 0; hour < 12 && !upgraded.findUnfinishedLongerThan(Duration.ZERO).isEmpty(); hour++) {
            scheduler.advance(Duration.ofHours(1));
            transport.drainAll();
        }
        for (int i = 0; i < 8; i++) {
            String sagaId = "s-" + i;
            assertEquals(waiting.contains(sagaId) ? SagaStatus.COMPENSATED : SagaStatus.COMPLETED,
                    upgraded.find(sagaId).orElseThrow().status(), sagaId);
        }
        assertEquals(8, charged.size(), "the payment service took every payment, those of the compensated sagas too");
    }

    @Test
    void anOldInstanceThatAlreadyRegistersVersionTwoTakesTheRepliesOfTheSagasTheNewOneStartsUnderIt() {
        SagaOrchestrator old = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2));
        SagaOrchestrator upgraded = node(SagaOrchestrator.builder().bus(bus()).scheduler(scheduler).register(v1).register(v2));
        for (int i = 0; i < 8; i++) {
            old.start(v1, "v1-" + i, "order-" + i, new Order("order-" + i, null));
            upgraded.start(v2, "v2-" + i, "order-" + i, new OrderV2("order-" + i, "USD", null));
        }
        transport.drainAll();
        assertEquals(List.of(), upgraded.findUnfinishedLongerThan(Duration.ZERO));
        assertEquals(16, upgraded.findByStatus(SagaStatus.COMPLETED).size());
    }

    record Release(String orderId) {
    }

    record Released(boolean released) {
    }

    @Test
    void aRemoteCompensationRetriedFromOneInstanceIsFinishedWhereItsReplyArrivesAndTheCallerElsewhereLearnsOfItAtTheTimeout() {
        AtomicBoolean stockDown = new AtomicBoolean(true);
        TypeRegistry types = TypeRegistry.builder().register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class)
                .register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                .register("release", 1, Release.class).register("released", 1, Released.class).build();
        java.util.function.Supplier<EventBus> newBus = () -> {
            EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(types).build();
            closeables.add(bus);
            return bus;
        };
        EventBus stock = newBus.get();
        stock.subscribe("stock", "stock-commands", Release.class,
                (command, ctx) -> SagaMessages.reply(stock, ctx.message(), new Released(!stockDown.get())));
        SagaDefinition<Order> def = SagaDefinition.builder("release-saga", Order.class).dataType("release-data")
                .step("reserve").action((d, ctx) -> d)
                .compensationCommand("stock-commands", (d, ctx) -> new Release(d.orderId()))
                .onCompensationReply(Released.class, (d, reply) -> {
                    if (!reply.released()) {
                        throw new IllegalStateException("stock refused the release");
                    }
                })
                .compensationRetry(RetryPolicy.NONE).compensationTimeout(Duration.ofMinutes(1))
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        InMemoryMetrics metricsA = new InMemoryMetrics();
        InMemoryMetrics metricsB = new InMemoryMetrics();
        SagaOrchestrator a = node(SagaOrchestrator.builder().bus(newBus.get()).scheduler(scheduler).metrics(metricsA).register(def)
                .ownership("orders-a", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        SagaOrchestrator b = node(SagaOrchestrator.builder().bus(newBus.get()).scheduler(scheduler).metrics(metricsB).register(def)
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60)));
        for (int i = 0; i < 6; i++) {
            a.start(def, "s-" + i, "order-" + i, new Order("order-" + i, null));
        }
        transport.drainAll();
        assertEquals(6, b.findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).size());
        stockDown.set(false);
        List<java.util.concurrent.CompletableFuture<io.streamsaga.saga.SagaResult<Object>>> retries = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            retries.add(b.retryCompensation("s-" + i).toCompletableFuture());
        }
        transport.drainAll();

        // Each retry's reply reached one instance or the other (the reply topic's group), which finished the saga.
        List<Integer> answeredElsewhere = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            assertEquals(SagaStatus.COMPENSATED, b.find("s-" + i).orElseThrow().status(), "s-" + i);
            if (retries.get(i).isDone()) {
                assertEquals(SagaOutcome.COMPENSATED, retries.get(i).join().outcome());
            } else {
                answeredElsewhere.add(i);
            }
        }
        assertTrue(!answeredElsewhere.isEmpty() && answeredElsewhere.size() < 6, answeredElsewhere.toString());
        // saga_finished counts each compensated once, on the instance that finished it, not the caller's.
        assertEquals(answeredElsewhere.size(), metricsA.sagasFinished("release-saga", "compensated"));
        assertEquals(6 - answeredElsewhere.size(), metricsB.sagasFinished("release-saga", "compensated"));
        // The caller on B learns of a saga instance A finished only at the compensation's timeout, as for any run of a
        // saga another node moved on (docs/sagas.md, "Recovery with several nodes"): the outcome is in the store.
        long failedOnBBefore = metricsB.sagasFinished("release-saga", "failed");
        scheduler.advance(Duration.ofMinutes(1));
        for (int i : answeredElsewhere) {
            java.util.concurrent.CompletionException e = assertThrows(java.util.concurrent.CompletionException.class,
                    retries.get(i)::join);
            assertTrue(e.getCause() instanceof io.streamsaga.saga.ConcurrentSagaUpdateException, e.toString());
            assertEquals(SagaStatus.COMPENSATED, b.find("s-" + i).orElseThrow().status());
        }
        assertEquals(6 - answeredElsewhere.size(), metricsB.sagasFinished("release-saga", "compensated"),
                "the caller's stage failing at the timeout counts nothing");
        assertEquals(0, metricsB.sagasFinished("release-saga", "failed") - failedOnBBefore);
    }
}
