package io.streamsaga.jdbc.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An application's order saga on the JDBC store through the orchestrator, as docs/sagas.md and docs/durability.md
 * describe it: a process stopped mid-step and a fresh orchestrator's recover(), a repeated explicit id, queries and
 * retention, an operator call after a restart, and an upgrade to version 2 through an upcaster; subclasses pick
 * PostgreSQL or H2.
 */
abstract class DurableSagaRestartAndUpgradeTest {
    record Order(String orderId, long amount, String chargeId) {
        Order withCharge(String id) {
            return new Order(orderId, amount, id);
        }
    }

    record OrderV2(String orderId, long amount, String currency, String chargeId) {
        OrderV2 withCharge(String id) {
            return new OrderV2(orderId, amount, currency, id);
        }
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final List<String> effects = new CopyOnWriteArrayList<>();
    private final List<SagaOrchestrator> orchestrators = new ArrayList<>();
    /** The charge's pending stage while a test holds it (the process "hangs" in the payment provider). */
    private final List<CompletableFuture<String>> pendingCharges = new CopyOnWriteArrayList<>();
    private final AtomicBoolean holdCharges = new AtomicBoolean(true);
    private final AtomicBoolean failRelease = new AtomicBoolean(false);

    @BeforeEach
    void setUp() {
        JdbcSchema.of(db.database().dataSource()).migrate();
    }

    @AfterEach
    void tearDown() {
        orchestrators.forEach(SagaOrchestrator::close);
        scheduler.close();
    }

    private SagaOrchestrator orchestrator(SagaOrchestrator.Builder builder) {
        SagaOrchestrator o = builder.store(JdbcSagaStore.create(db.database().dataSource())).scheduler(scheduler).build();
        orchestrators.add(o);
        return o;
    }

    private SagaDefinition<Order> v1() {
        return SagaDefinition.builder("order-saga", Order.class).version(1).dataType("order-data")
                .step("reserve")
                    .action((d, ctx) -> { effects.add("reserve " + ctx.idempotencyKey()); return d; })
                    .compensation((d, ctx) -> {
                        effects.add("release " + ctx.idempotencyKey());
                        if (failRelease.get()) {
                            throw new IllegalStateException("inventory down");
                        }
                    })
                    .compensationRetry(RetryPolicy.NONE)
                .step("charge")
                    .asyncAction((d, ctx) -> {
                        effects.add("charge " + ctx.idempotencyKey());
                        CompletableFuture<String> charge = new CompletableFuture<>();
                        if (holdCharges.get()) {
                            pendingCharges.add(charge);
                        } else {
                            charge.complete("ch-" + d.orderId());
                        }
                        return charge.thenApply(d::withCharge);
                    })
                    .compensation((d, ctx) -> effects.add("refund " + ctx.idempotencyKey()))
                    .retry(RetryPolicy.NONE)
                .build();
    }

    private SagaDefinition<OrderV2> v2() {
        return SagaDefinition.builder("order-saga", OrderV2.class).version(2).dataType("order-data-v2")
                .step("reserve")
                    .action((d, ctx) -> { effects.add("v2 reserve " + ctx.idempotencyKey()); return d; })
                    .compensation((d, ctx) -> effects.add("v2 release " + ctx.idempotencyKey() + " " + d.currency()))
                .step("charge")
                    .asyncAction((d, ctx) -> {
                        effects.add("v2 charge " + ctx.idempotencyKey() + " " + d.currency());
                        return CompletableFuture.completedFuture(d.withCharge("ch-" + d.orderId() + "-" + d.currency()));
                    })
                    .compensation((d, ctx) -> effects.add("v2 refund " + ctx.idempotencyKey()))
                .build();
    }

    @Test
    void aSagaCutOffMidStepByAShutdownIsFinishedByAFreshOrchestratorWithTheSameIdempotencyKey() {
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().register(v1()));
        CompletableFuture<SagaResult<Order>> firstResult =
                first.start(v1(), "s-1", "order-1", new Order("order-1", 50, null)).toCompletableFuture();
        assertEquals(1, pendingCharges.size());
        first.close();
        assertThrows(CompletionException.class, firstResult::join);

        holdCharges.set(false);
        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().register(v1()));
        SagaOrchestrator.RecoveryReport report = second.recover();
        assertEquals(List.of("s-1"), report.resumed());
        SagaResult<Object> result = second.result("s-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(new Order("order-1", 50, "ch-order-1"), result.data());
        assertEquals(List.of("reserve s-1/reserve", "charge s-1/charge", "charge s-1/charge"), effects);

        pendingCharges.get(0).complete("late"); // the first process's provider answers after all: ignored
        SagaInstance stored = second.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, stored.status());
        assertEquals("ch-order-1", ((com.fasterxml.jackson.databind.JsonNode) stored.data()).get("chargeId").asText());
        assertEquals(List.of("s-1"), second.findByBusinessKey("order-1").stream().map(SagaInstance::sagaId).toList());
    }

    @Test
    void recoverIdleForLeavesTheSagaALiveOrchestratorDrivesAloneAndResumesAnAbandonedOne() {
        SagaOrchestrator gone = orchestrator(SagaOrchestrator.builder().register(v1()));
        gone.start(v1(), "abandoned", null, new Order("order-1", 50, null));
        gone.close(); // its node died mid-charge
        scheduler.advance(Duration.ofMinutes(10));
        SagaOrchestrator nodeA = orchestrator(SagaOrchestrator.builder().register(v1()));
        CompletableFuture<SagaResult<Order>> live =
                nodeA.start(v1(), "live", null, new Order("order-2", 70, null)).toCompletableFuture();
        assertEquals(2, pendingCharges.size()); // node A waits for the provider
        scheduler.advance(Duration.ofMinutes(1));
        holdCharges.set(false);

        SagaOrchestrator nodeB = orchestrator(SagaOrchestrator.builder().register(v1()));
        SagaOrchestrator.RecoveryReport report = nodeB.recover(Duration.ofMinutes(5));

        assertEquals(List.of("abandoned"), report.resumed());
        assertEquals(List.of(), report.recentlyUpdated(), "updated within idleFor: left out by the query, not read");
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("abandoned").toCompletableFuture().join().outcome());
        pendingCharges.get(1).complete("ch-live");
        assertEquals(new Order("order-2", 70, "ch-live"), live.join().data(), "node A finished its saga itself");
        assertEquals(List.of("reserve abandoned/reserve", "charge abandoned/charge", "reserve live/reserve",
                "charge live/charge", "charge abandoned/charge"), effects);
    }

    @Test
    void withOwnershipARecoveryLeavesALiveNodesSagaAloneHoweverOldAndAdoptsThoseOfClosedAndDeadNodes() {
        Duration heartbeat = Duration.ofMinutes(1);
        Duration lease = Duration.ofMinutes(3);
        SagaOrchestrator closed = orchestrator(SagaOrchestrator.builder().register(v1()).ownership("closed", heartbeat, lease));
        closed.start(v1(), "of-closed", null, new Order("order-1", 50, null));
        closed.close(); // a graceful shutdown mid-charge: its heartbeat row is removed
        VirtualScheduler deadClock = new VirtualScheduler(); // a node that dies: its heartbeat stops at build
        SagaOrchestrator dead = SagaOrchestrator.builder().register(v1()).ownership("dead", heartbeat, lease)
                .store(JdbcSagaStore.create(db.database().dataSource())).scheduler(deadClock).build();
        dead.start(v1(), "of-dead", null, new Order("order-3", 30, null));
        SagaOrchestrator nodeA = orchestrator(SagaOrchestrator.builder().register(v1()).ownership("a", heartbeat, lease));
        CompletableFuture<SagaResult<Order>> live =
                nodeA.start(v1(), "live", null, new Order("order-2", 70, null)).toCompletableFuture();
        assertEquals(3, pendingCharges.size());
        SagaOrchestrator nodeB = orchestrator(SagaOrchestrator.builder().register(v1()).ownership("b", heartbeat, lease));
        holdCharges.set(false);

        SagaOrchestrator.RecoveryReport atOnce = nodeB.recover();
        assertEquals(List.of("of-closed"), atOnce.resumed());
        assertEquals(List.of(), atOnce.ownedElsewhere(), "the live nodes' sagas: left out by the query, not read");
        scheduler.advance(Duration.ofHours(1)); // node A's charge takes an hour; its heartbeat goes on
        SagaOrchestrator.RecoveryReport later = nodeB.recover(Duration.ofMinutes(5));

        assertEquals(List.of("of-dead"), later.resumed());
        assertEquals(List.of(), later.ownedElsewhere());
        assertEquals(Set.of("a", "b"), JdbcSagaStore.create(db.database().dataSource()).heartbeats().keySet(),
                "the dead node's heartbeat row, older than the lease, was removed");
        for (String id : List.of("of-closed", "of-dead")) {
            assertEquals(SagaOutcome.COMPLETED, nodeB.result(id).toCompletableFuture().join().outcome());
            assertEquals("b", nodeB.find(id).orElseThrow().owner());
        }
        pendingCharges.get(2).complete("ch-live");
        assertEquals(new Order("order-2", 70, "ch-live"), live.join().data(), "node A finished its saga itself");
        assertEquals("a", nodeA.find("live").orElseThrow().owner());
        assertEquals(List.of("reserve of-closed/reserve", "charge of-closed/charge", "reserve of-dead/reserve",
                "charge of-dead/charge", "reserve live/reserve", "charge live/charge", "charge of-closed/charge",
                "charge of-dead/charge"), effects);
        deadClock.close();
    }

    @Test
    void withOwnershipALiveNodeWhoseIdAnEarlierVersionStoredWithALoneSurrogateHasItsSagaLeftAloneAndTheOthersResumed()
            throws Exception {
        // An earlier version let a node id hold a lone surrogate, and H2 stored it as it was (PostgreSQL's driver as
        // '?', an ordinary id). While such a node still runs (a rolling upgrade), its heartbeat is live: the recovery
        // put it among the owners the store leaves out, and RecoveryQuery refuses such an owner, so every recovery
        // and recoverEvery sweep failed at its first page and no saga was resumed. The store cannot be asked to leave
        // it out; its saga comes in the page and is left alone by the orchestrator's own check of its owner.
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).version(1).dataType("order-data")
                .step("ship").action((d, ctx) -> { effects.add(ctx.idempotencyKey()); return d; })
                .build();
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        java.time.Instant t0 = scheduler.clock().instant().minus(Duration.ofHours(1));
        for (String id : List.of("s-old-node", "s-free")) {
            store.insert(new SagaInstance(id, "shipping", 1, null, "order-data", new Order("o-" + id, 1, null),
                            SagaStatus.RUNNING, List.of(io.streamsaga.saga.StepState.pending("ship")), null, null, t0, t0, 1),
                    new SagaTransition(id, 1, t0, TransitionType.SAGA_STARTED, null, 0, null));
        }
        String oldNode = "n-\uD800";
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.PreparedStatement owner = c.prepareStatement("UPDATE ss_saga SET owner = ? WHERE saga_id = ?");
             java.sql.PreparedStatement heartbeat = c.prepareStatement(
                     "INSERT INTO ss_saga_node (node_id, heartbeat_at) VALUES (?, ?)")) {
            owner.setString(1, oldNode);
            owner.setString(2, "s-old-node");
            assertEquals(1, owner.executeUpdate());
            heartbeat.setString(1, oldNode);
            heartbeat.setObject(2, java.time.OffsetDateTime.ofInstant(scheduler.clock().instant(), java.time.ZoneOffset.UTC));
            assertEquals(1, heartbeat.executeUpdate());
        }
        boolean kept = kind() == TestDatabase.Kind.H2; // PostgreSQL's driver wrote 'n-?': left out by the query

        SagaOrchestrator.RecoveryReport report = orchestrator(SagaOrchestrator.builder().register(shipping)
                .ownership("b", Duration.ofMinutes(1), Duration.ofMinutes(3))).recover();

        assertEquals(List.of("s-free"), report.resumed());
        assertEquals(kept ? List.of("s-old-node") : List.of(), report.ownedElsewhere());
        assertEquals(List.of("s-free/ship"), effects);
        SagaInstance untouched = store.find("s-old-node").orElseThrow();
        assertEquals(SagaStatus.RUNNING, untouched.status());
        assertEquals(kept ? oldNode : "n-?", untouched.owner());
    }

    @Test
    void aSecondStartWithTheIdOfAStoredSagaAfterARestartIsRefusedWithoutRunningAnything() {
        holdCharges.set(false);
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().register(v1()));
        first.start(v1(), "s-1", "order-1", new Order("order-1", 50, null)).toCompletableFuture().join();
        first.close();
        effects.clear();
        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().register(v1()));
        CompletableFuture<SagaResult<Order>> again =
                second.start(v1(), "s-1", "order-1", new Order("order-1", 50, null)).toCompletableFuture();
        CompletionException e = assertThrows(CompletionException.class, again::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(List.of(), effects);
        assertEquals(SagaStatus.COMPLETED, second.find("s-1").orElseThrow().status());
    }

    @Test
    void queriesAndRetentionOverTheDurableStore() {
        SagaOrchestrator o = orchestrator(SagaOrchestrator.builder().register(v1()).retention(Duration.ofHours(1)));
        o.start(v1(), "held", "order-1", new Order("order-1", 1, null));
        holdCharges.set(false);
        o.start(v1(), "done", "order-1", new Order("order-1", 1, null));
        failRelease.set(true);
        scheduler.advance(Duration.ofHours(2));
        assertEquals(List.of("done", "held"), o.findByBusinessKey("order-1").stream().map(SagaInstance::sagaId).sorted().toList());
        assertEquals(List.of("held"), o.findUnfinishedLongerThan(Duration.ofHours(1)).stream().map(SagaInstance::sagaId).toList());
        assertEquals(List.of(), o.findUnfinishedLongerThan(Duration.ofHours(3)));
        // An age is a threshold: one longer than MAX_DURATION is taken as that, a time both databases can compare with
        // (FOREVER was refused here; a thousand centuries made a time before PostgreSQL's earliest).
        assertEquals(List.of(), o.findUnfinishedLongerThan(java.time.temporal.ChronoUnit.FOREVER.getDuration()));
        assertEquals(List.of(), o.findUnfinishedLongerThan(Duration.ofDays(36_500_000)));
        assertEquals(List.of(), o.recover(Duration.ofDays(36_500_000)).unresolvable());
        assertEquals(List.of("done"), o.findByStatus(SagaStatus.COMPLETED).stream().map(SagaInstance::sagaId).toList());
        assertThrows(ConfigurationException.class, () -> o.findByStatus());
        assertThrows(ConfigurationException.class, () -> o.findUnfinishedLongerThan(Duration.ofSeconds(-1)));
        // A retention is an age threshold too: FOREVER (refused before) keeps every finished saga, on both databases.
        SagaOrchestrator keepingAll = orchestrator(SagaOrchestrator.builder().register(v1())
                .retention(java.time.temporal.ChronoUnit.FOREVER.getDuration()));
        assertEquals(0, keepingAll.purgeFinished());
        assertEquals(1, o.purgeFinished());
        assertTrue(o.find("done").isEmpty());
        assertTrue(o.history("done").isEmpty());
        assertTrue(o.find("held").isPresent());
    }

    /** A saga stored {@code status} since {@code at}, its start its only transition. */
    private static void stored(JdbcSagaStore store, String sagaId, SagaStatus status, Instant at) {
        store.insert(new SagaInstance(sagaId, "order-saga", 1, "order-1", "order-data", new Order("order-1", 1, null),
                status, List.of(), null, null, at, at, 1),
                new SagaTransition(sagaId, 1, at, TransitionType.SAGA_STARTED, null, 0, null));
    }

    @Test
    void aScheduledRetentionPurgeDeletesFinishedSagasInBatchesOf500AndLeavesTheUnfinished() {
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        Instant old = scheduler.now().minus(Duration.ofHours(2));
        for (int i = 0; i < 501; i++) { // two batches
            stored(store, "done-" + i, i % 3 == 0 ? SagaStatus.COMPENSATED : i % 3 == 1 ? SagaStatus.RESOLVED
                    : SagaStatus.COMPLETED, old);
        }
        stored(store, "running", SagaStatus.RUNNING, old);
        stored(store, "compensating", SagaStatus.COMPENSATING, old);
        stored(store, "needs-attention", SagaStatus.FAILED_NEEDS_ATTENTION, old);
        Set<SagaStatus> finished = Set.of(SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.RESOLVED);
        Duration every = Duration.ofMinutes(1);
        orchestrator(SagaOrchestrator.builder().retention(Duration.ofHours(1)).purgeEvery(every)); // its purge alone
        List<Integer> finishedLeftWhenTheTimerRan = new ArrayList<>();
        // Another timer of the scheduler, due with the purge, armed after it: it runs after the purge's first batch
        scheduler.schedule(every, () -> finishedLeftWhenTheTimerRan.add(store.findByStatus(finished).size()));

        scheduler.advance(every);

        assertEquals(List.of(1), finishedLeftWhenTheTimerRan, "a batch deletes 500");
        assertEquals(List.of(), store.findByStatus(finished), "the run's second batch deleted the rest");
        assertEquals(List.of("compensating", "needs-attention", "running"), store.findByStatus(EnumSet.complementOf(
                EnumSet.copyOf(finished))).stream().map(SagaInstance::sagaId).sorted().toList());
        assertTrue(store.history("done-500").isEmpty(), "a purged saga's history goes with it");
        assertEquals(1, store.history("running").size());
    }

    @Test
    void anOperatorRetriesAFailedCompensationAfterARestart() {
        failRelease.set(true);
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().register(v1()));
        first.start(v1(), "s-1", "order-1", new Order("order-1", 50, null));
        pendingCharges.get(0).completeExceptionally(new IllegalStateException("card declined"));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, first.find("s-1").orElseThrow().status());
        first.close();

        failRelease.set(false);
        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().register(v1()));
        assertEquals(List.of(), second.recover().resumed(), "a saga that needs attention waits for an operator");
        assertEquals(List.of("s-1"), second.findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).stream().map(SagaInstance::sagaId).toList());
        SagaResult<Object> result = second.retryCompensation("s-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals(List.of("reserve s-1/reserve", "charge s-1/charge", "release s-1/reserve", "release s-1/reserve"), effects);
        assertThrows(SagaException.class, () -> second.markResolved("s-1"), "no longer needs attention");
        assertThrows(SagaException.class, () -> second.markResolved("unknown"));
    }

    @Test
    void aSagaStartedUnderVersionOneFinishesUnderVersionTwoThroughItsUpcaster() {
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().register(v1()));
        first.start(v1(), "s-1", "order-1", new Order("order-1", 50, null));
        first.close();

        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().register(v2())
                .dataUpcaster("order-saga", 1, data -> data.put("currency", "EUR")));
        assertEquals(List.of("s-1"), second.recover().resumed());
        SagaResult<Object> result = second.result("s-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(new OrderV2("order-1", 50, "EUR", "ch-order-1-EUR"), result.data());
        SagaInstance stored = second.find("s-1").orElseThrow();
        assertEquals(2, stored.definitionVersion());
        assertEquals("order-data-v2", stored.dataType());
        assertEquals(List.of("reserve s-1/reserve", "charge s-1/charge", "v2 charge s-1/charge EUR"), effects);
        assertTrue(second.history("s-1").stream().map(SagaTransition::type).anyMatch(TransitionType.SAGA_MIGRATED::equals));
    }

    @Test
    void aSagaThatNeededAttentionUnderVersionOneCanBeOperatedAfterTheUpgradeToVersionTwo() {
        failRelease.set(true);
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().register(v1()));
        first.start(v1(), "s-1", "order-1", new Order("order-1", 50, null));
        pendingCharges.get(0).completeExceptionally(new IllegalStateException("card declined"));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, first.find("s-1").orElseThrow().status());
        first.close();

        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().register(v2())
                .dataUpcaster("order-saga", 1, data -> data.put("currency", "EUR")));
        second.recover();
        SagaResult<Object> result = second.retryCompensation("s-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals("v2 release s-1/reserve EUR", effects.get(effects.size() - 1));
    }

    @Test
    void aSagaWhoseStoredRowNoReadCanParseIsReportedUnresolvableAndTheSagasOnItsPageAndAfterAreResumed() throws Exception {
        // A row whose data (or step states) no read can parse, corrupted by hand or written by an earlier version with a
        // lone surrogate in a field name, failed every recovery page holding it ("unreadable data of saga"): recover()
        // and every recoverEvery sweep failed, and no saga of that page or after it was ever resumed. It is now
        // reported unresolvable, as a saga that cannot be migrated is, and the recovery pages on past it.
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).version(1).dataType("order-data")
                .step("ship").action((d, ctx) -> { effects.add(ctx.idempotencyKey()); return d; })
                .build();
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        java.time.Instant t0 = java.time.Instant.parse("2026-01-01T00:00:00Z");
        int sagas = 520; // over the orchestrator's recovery page of 500: the last row of the first page is unreadable
        List<String> readable = new ArrayList<>();
        for (int i = 0; i < sagas; i++) {
            String id = String.format("s-%03d", i);
            java.time.Instant at = t0.plusSeconds(i);
            store.insert(new SagaInstance(id, "shipping", 1, null, "order-data", new Order("o-" + i, i, null),
                            SagaStatus.RUNNING, List.of(io.streamsaga.saga.StepState.pending("ship")), null, null, at, at, 1),
                    new SagaTransition(id, 1, at, TransitionType.SAGA_STARTED, null, 0, null));
            if (i != 100 && i != 499) {
                readable.add(id);
            }
        }
        overwrite("steps", "s-100", "[{\"name\": \"ship\", ");
        overwrite("data", "s-499", "{\"item-\\uD800\": 1}"); // as an earlier version wrote a map key with a lone surrogate

        SagaOrchestrator.RecoveryReport report = orchestrator(SagaOrchestrator.builder().register(shipping)).recover();

        assertEquals(List.of("s-100", "s-499"), report.unresolvable());
        assertEquals(readable, report.resumed());
        assertEquals(sagas - 2, db.database().queryLong("SELECT COUNT(*) FROM ss_saga WHERE status = 'COMPLETED'"));
        assertEquals(sagas - 2, effects.size());
        // Asked for by id, the saga is not handed out with data or steps it does not have: its read still fails.
        io.streamsaga.jdbc.JdbcException e = assertThrows(io.streamsaga.jdbc.JdbcException.class, () -> store.find("s-499"));
        assertTrue(e.getMessage().contains("unreadable data of saga s-499"), e.getMessage());
        e = assertThrows(io.streamsaga.jdbc.JdbcException.class, () -> store.find("s-100"));
        assertTrue(e.getMessage().contains("unreadable step states of saga s-100"), e.getMessage());
        e = assertThrows(io.streamsaga.jdbc.JdbcException.class, () -> store.findPage(
                new io.streamsaga.saga.spi.SagaQuery(Set.of(SagaStatus.RUNNING), null, null, null, 10)));
        assertTrue(e.getMessage().contains("unreadable step states of saga s-100"), e.getMessage());
    }

    @Test
    void aSagaWhoseRowIsCorruptOutsideItsJsonIsReportedUnresolvableAndTheSagasOnItsPageAndAfterAreResumed()
            throws Exception {
        // Corruption outside the JSON columns (a definition version below 1, a blank saga name or data type, a version
        // below 1, a failure without class), by hand or by another tool, failed every recovery page holding the row,
        // where unreadable JSON was reported unresolvable: no saga on that page or after it was ever resumed. Each is
        // now returned marked unreadable (UnreadableSagaData), reported unresolvable and left untouched; a row whose
        // saga id is blank, which no instance can carry, is logged and passed over, the pages read on past it.
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).version(1).dataType("order-data")
                .step("ship").action((d, ctx) -> { effects.add(ctx.idempotencyKey()); return d; })
                .build();
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        java.time.Instant t0 = java.time.Instant.parse("2026-01-01T00:00:00Z");
        int sagas = 520; // over the orchestrator's recovery page of 500: the last row of the first page is corrupt
        List<String> corrupt = List.of("s-050", "s-150", "s-250", "s-350", "s-450", "s-499");
        List<String> readable = new ArrayList<>();
        for (int i = 0; i < sagas; i++) {
            String id = String.format("s-%03d", i);
            java.time.Instant at = t0.plusSeconds(i);
            store.insert(new SagaInstance(id, "shipping", 1, null, "order-data", new Order("o-" + i, i, null),
                            SagaStatus.RUNNING, List.of(io.streamsaga.saga.StepState.pending("ship")), null, null, at, at, 1),
                    new SagaTransition(id, 1, at, TransitionType.SAGA_STARTED, null, 0, null));
            if (!corrupt.contains(id)) {
                readable.add(id);
            }
        }
        update("UPDATE ss_saga SET definition_version = 0 WHERE saga_id = 's-050'");
        update("UPDATE ss_saga SET data_type = ' ' WHERE saga_id = 's-150'");
        update("UPDATE ss_saga SET saga_name = '' WHERE saga_id = 's-250'");
        update("UPDATE ss_saga SET version = 0 WHERE saga_id = 's-350'");
        update("UPDATE ss_saga SET failure_step = 'ship', failure_class = ' ' WHERE saga_id = 's-450'");
        update("UPDATE ss_saga SET saga_id = ' ' WHERE saga_id = 's-499'");

        SagaOrchestrator.RecoveryReport report = orchestrator(SagaOrchestrator.builder().register(shipping)).recover();

        assertEquals(corrupt.subList(0, 5), report.unresolvable());
        assertEquals(readable, report.resumed());
        assertEquals(readable.size(), db.database().queryLong("SELECT COUNT(*) FROM ss_saga WHERE status = 'COMPLETED'"));
        assertEquals(readable.size(), effects.size());
        assertEquals(6, db.database().queryLong("SELECT COUNT(*) FROM ss_saga WHERE status = 'RUNNING'"),
                "the corrupt rows are left as they were");
    }

    @Test
    void aSagaWhoseStoredStepsDoNotMatchItsRegisteredDefinitionIsReportedUnresolvableAndTheOthersAreResumed() {
        // A definition whose steps changed without a new version (a step added in place), or step states edited by
        // hand: the stored step states parse, but not one per step of the registered definition. Adopted as they
        // were, the run read them by the definition's step index and threw out of recover() (an
        // ArrayIndexOutOfBoundsException), so no saga after it was resumed, at every recovery.
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).version(1).dataType("order-data")
                .step("pack").action((d, ctx) -> { effects.add(ctx.idempotencyKey()); return d; })
                .step("ship").action((d, ctx) -> { effects.add(ctx.idempotencyKey()); return d; })
                .build();
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        java.time.Instant t0 = java.time.Instant.parse("2026-01-01T00:00:00Z");
        for (int i = 0; i < 3; i++) {
            String id = "s-" + i;
            java.time.Instant at = t0.plusSeconds(i);
            List<io.streamsaga.saga.StepState> steps = i == 0
                    ? List.of(io.streamsaga.saga.StepState.pending("ship")) // stored before "pack" was added to version 1
                    : List.of(io.streamsaga.saga.StepState.pending("pack"), io.streamsaga.saga.StepState.pending("ship"));
            store.insert(new SagaInstance(id, "shipping", 1, null, "order-data", new Order("o-" + i, i, null),
                            SagaStatus.RUNNING, steps, null, null, at, at, 1),
                    new SagaTransition(id, 1, at, TransitionType.SAGA_STARTED, null, 0, null));
        }

        SagaOrchestrator.RecoveryReport report = orchestrator(SagaOrchestrator.builder().register(shipping)).recover();

        assertEquals(List.of("s-0"), report.unresolvable());
        assertEquals(List.of("s-1", "s-2"), report.resumed());
        assertEquals(List.of("s-1/pack", "s-1/ship", "s-2/pack", "s-2/ship"), effects);
        SagaInstance untouched = store.find("s-0").orElseThrow();
        assertEquals(1, untouched.version());
        assertEquals(List.of(io.streamsaga.saga.StepState.pending("ship")), untouched.steps());
    }

    /** Runs {@code sql}, one row changed, past the store's own checks. */
    private void update(String sql) throws java.sql.SQLException {
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.Statement st = c.createStatement()) {
            assertEquals(1, st.executeUpdate(sql));
        }
    }

    /** Writes {@code json} (UTF-8) into {@code column} of the saga's row, by SQL, past the store's own checks. */
    private void overwrite(String column, String sagaId, String json) throws java.sql.SQLException {
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.PreparedStatement ps = c.prepareStatement("UPDATE ss_saga SET " + column + " = ? WHERE saga_id = ?")) {
            ps.setBytes(1, json.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            ps.setString(2, sagaId);
            assertEquals(1, ps.executeUpdate());
        }
    }
}
