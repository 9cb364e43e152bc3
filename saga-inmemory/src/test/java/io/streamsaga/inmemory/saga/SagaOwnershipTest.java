package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.RecoveryReport;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Recovery with several nodes": with saga ownership ({@code Builder.ownership}), a node's recovery
 * leaves the sagas of live nodes alone however long they wait, and adopts those of a node that closed at once and
 * those of a node that stopped heartbeating once its lease ran out, whatever their age.
 */
class SagaOwnershipTest {
    record Order(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    static final class Crash extends SimulatedProcessCrash {
        Crash() {
            super("the node died");
        }
    }

    private static final Duration HEARTBEAT = Duration.ofSeconds(10);
    private static final Duration LEASE = Duration.ofSeconds(30);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                    .build())
            .build();
    private final List<Message> commands = new CopyOnWriteArrayList<>();
    private final Map<String, AtomicInteger> shipped = new ConcurrentHashMap<>();
    private final Set<String> dieOnce = ConcurrentHashMap.newKeySet();
    private final List<SagaOrchestrator> nodes = new ArrayList<>();

    @AfterEach
    void tearDown() {
        nodes.forEach(SagaOrchestrator::close);
        bus.close();
        transport.close();
    }

    /** charge (remote: its reply may take hours; timeout a day) then ship (local). */
    private SagaDefinition<Order> paySaga() {
        return SagaDefinition.builder("pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .timeout(Duration.ofDays(1))
                .step("ship").action((order, ctx) -> ship(order))
                .build();
    }

    /** One local step, whose first run dies with its node for the orders in dieOnce. */
    private SagaDefinition<Order> shipSaga() {
        return SagaDefinition.builder("ship-saga", Order.class).step("ship").action((order, ctx) -> ship(order)).build();
    }

    private Order ship(Order order) {
        shipped.computeIfAbsent(order.id(), id -> new AtomicInteger()).incrementAndGet();
        if (dieOnce.remove(order.id())) {
            throw new Crash();
        }
        return order;
    }

    private SagaOrchestrator.Builder node(String nodeId, SagaStore over, VirtualScheduler clock, String replyTopic) {
        return SagaOrchestrator.builder().store(over).bus(bus).scheduler(clock).register(paySaga()).register(shipSaga())
                .replyTopic(replyTopic).ownership(nodeId, HEARTBEAT, LEASE);
    }

    private SagaOrchestrator node(String nodeId) {
        return track(node(nodeId, store, scheduler, "replies-" + nodeId).build());
    }

    private SagaOrchestrator track(SagaOrchestrator node) {
        nodes.add(node);
        return node;
    }

    private void collectCommands() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
    }

    /** Node {@code node} starts order "paid", whose command is sent; the saga then waits for the reply. */
    private CompletableFuture<SagaResult<Order>> startWaiting(SagaOrchestrator node) {
        collectCommands();
        CompletableFuture<SagaResult<Order>> started = node.start(paySaga(), "paid", null, new Order("paid")).toCompletableFuture();
        transport.drainAll();
        assertEquals(1, commands.size());
        assertEquals(StepStatus.WAITING, store.find("paid").orElseThrow().step("charge").orElseThrow().status());
        return started;
    }

    @Test
    void aLiveNodesWaitingRemoteSagaIsNotAdoptedHoweverOldAndItsCallerGetsTheResult() {
        SagaOrchestrator nodeA = node("a");
        SagaOrchestrator nodeB = node("b");
        CompletableFuture<SagaResult<Order>> started = startWaiting(nodeA);
        assertEquals("a", store.find("paid").orElseThrow().owner());

        scheduler.advance(Duration.ofHours(10)); // the reply takes hours; node A's heartbeat goes on
        RecoveryReport report = nodeB.recover();
        assertEquals(List.of(), report.resumed());
        assertEquals(List.of(), report.ownedElsewhere(), "node A's: left out by the store, not even read");
        assertEquals(List.of(), nodeB.recover(Duration.ofHours(1)).resumed(), "idleFor changes nothing");
        transport.drainAll();
        assertEquals(1, commands.size(), "node B sent no command");

        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(SagaOutcome.COMPLETED, started.join().outcome());
        assertEquals(1, shipped.get("paid").get());
        assertFalse(store.history("paid").stream().anyMatch(t -> t.type() == TransitionType.SAGA_ADOPTED));
    }

    @Test
    void theSagasOfANodeThatStoppedHeartbeatingAreAdoptedOnceItsLeaseRanOutWhateverTheirAge() {
        // Node A dies: its clock stops with it (no heartbeat after the one at build), and it is never closed.
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));
        assertEquals("a", store.find("late").orElseThrow().owner());
        SagaOrchestrator nodeB = node("b");

        scheduler.advance(LEASE.minusSeconds(1));
        assertEquals(List.of(), nodeB.recover().resumed(), "node A's lease runs yet");
        assertEquals(1, shipped.get("late").get());
        scheduler.advance(Duration.ofSeconds(1));

        RecoveryReport report = nodeB.recover();
        assertEquals(List.of("late"), report.resumed());
        assertEquals(List.of(), report.ownedElsewhere());
        SagaInstance adopted = store.find("late").orElseThrow();
        assertEquals(SagaStatus.COMPLETED, adopted.status());
        assertEquals("b", adopted.owner());
        assertEquals(2, shipped.get("late").get());
        SagaTransition adoption = store.history("late").stream().filter(t -> t.type() == TransitionType.SAGA_ADOPTED)
                .findFirst().orElseThrow();
        assertEquals("from a", adoption.detail());
        deadClock.close();
    }

    @Test
    void recoverEverySweepsAdoptTheSagasOfADeadNodeAtTheFirstSweepAfterItsLease() {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        SagaOrchestrator nodeB = track(node("b", store, scheduler, "replies-b")
                .recoverEvery(Duration.ofSeconds(20), Duration.ZERO).build());
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));

        scheduler.advance(Duration.ofSeconds(20)); // first sweep: the lease runs yet
        assertEquals(SagaStatus.RUNNING, store.find("late").orElseThrow().status());
        scheduler.advance(Duration.ofSeconds(20)); // second sweep, 40 s after node A's last heartbeat

        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("late").toCompletableFuture().join().outcome());
        deadClock.close();
    }

    @Test
    void aRecoveryRemovesTheHeartbeatOfANodeOlderThanTheLeaseAndANodeStillAliveWritesItAgain() {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build(); // crashes with a saga
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));
        VirtualScheduler pausedClock = new VirtualScheduler();
        SagaOrchestrator nodeC = track(node("c", store, pausedClock, "replies-c").build()); // pauses, owns nothing
        SagaOrchestrator nodeB = node("b");

        scheduler.advance(LEASE.minusSeconds(1));
        nodeB.recover();
        assertEquals(Set.of("a", "b", "c"), store.heartbeats().keySet(), "their lease runs yet");
        scheduler.advance(Duration.ofSeconds(1));

        assertEquals(List.of("late"), nodeB.recover().resumed());
        assertEquals(Set.of("b"), store.heartbeats().keySet(), "older than the lease: removed");

        pausedClock.advance(HEARTBEAT); // node C wakes: its next heartbeat writes it again
        assertEquals(Set.of("b", "c"), store.heartbeats().keySet());
        nodeC.start(paySaga(), "waiting", null, new Order("waiting"));
        assertEquals(List.of(), nodeB.recover().resumed(), "node C's");
        assertEquals(Set.of("b", "c"), store.heartbeats().keySet());
        deadClock.close();
        pausedClock.close();
    }

    @Test
    void aHeartbeatWrittenALeaseOrMoreAfterThePreviousOneIsCountedAsLate() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        StallingScheduler stalling = new StallingScheduler(scheduler);
        AtomicBoolean storeDown = new AtomicBoolean();
        SagaStore outage = new RegistryStore(store) {
            @Override
            public void heartbeat(String nodeId, Instant at) {
                if (storeDown.get()) {
                    throw new IllegalStateException("the store is down");
                }
                super.heartbeat(nodeId, at);
            }
        };
        track(SagaOrchestrator.builder().store(outage).scheduler(stalling).metrics(metrics).register(shipSaga())
                .ownership("a", HEARTBEAT, LEASE).build());
        Map<String, String> nodeA = Map.of("node", "a");

        scheduler.advance(HEARTBEAT.multipliedBy(5));
        assertEquals(0, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, nodeA), "on time");

        stalling.stall(LEASE); // a long pause: the next heartbeat is written a lease and an interval late
        scheduler.advance(HEARTBEAT);
        assertEquals(1, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, nodeA));
        scheduler.advance(HEARTBEAT.multipliedBy(5));
        assertEquals(1, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, nodeA), "on time again");

        storeDown.set(true); // an outage: the heartbeats fail for a lease
        scheduler.advance(LEASE);
        storeDown.set(false);
        scheduler.advance(HEARTBEAT.minusSeconds(1));
        assertEquals(1, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, nodeA), "none written yet");
        scheduler.advance(Duration.ofSeconds(1)); // the first one written after it, a lease and an interval late
        assertEquals(2, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, nodeA));
    }

    @Test
    void aNodeWhoseReplySubscriptionTakesALeaseToStartKeepsItsHeartbeatMeanwhileAndIsNotCountedLate() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        // As a Kafka subscribe waiting for its first partition assignment: the node's time goes on meanwhile.
        ForwardingTransport slowToAssign = new ForwardingTransport(transport) {
            @Override
            public Subscription subscribe(String group, TopicPattern pattern, StartPosition start,
                                          RecordHandler handler) {
                scheduler.advance(LEASE.plus(HEARTBEAT));
                return super.subscribe(group, pattern, start, handler);
            }
        };
        EventBus slowBus = EventBus.builder(slowToAssign).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                        .build())
                .build();
        try (slowBus) {
            track(SagaOrchestrator.builder().store(store).bus(slowBus).scheduler(scheduler).metrics(metrics)
                    .register(paySaga()).replyTopic("replies-a").ownership("a", HEARTBEAT, LEASE).build());

            Duration sinceHeartbeat = Duration.between(store.heartbeats().get("a"), scheduler.clock().instant());
            assertTrue(sinceHeartbeat.compareTo(HEARTBEAT) <= 0, "the other nodes read it live while it subscribed: "
                    + sinceHeartbeat);
            scheduler.advance(HEARTBEAT);
            assertEquals(0, metrics.counter(SagaOrchestrator.Ownership.LATE_HEARTBEAT_METRIC, Map.of("node", "a")),
                    "a node that just started is not late");
        }
    }

    @Test
    void aBuildWhoseReplySubscriptionFailsAfterHeartbeatsWereWrittenLeavesNoHeartbeatTimerBehind() {
        // The heartbeat timer is armed before the subscription (above): one failing after it ran must still cancel
        // it, or a node that never started renews its heartbeat on a shared scheduler for good.
        ForwardingTransport assignsThenFails = new ForwardingTransport(transport) {
            @Override
            public Subscription subscribe(String group, TopicPattern pattern, StartPosition start,
                                          RecordHandler handler) {
                scheduler.advance(HEARTBEAT.multipliedBy(2));
                throw new IllegalStateException("no assignment within the assignment timeout");
            }
        };
        EventBus failingBus = EventBus.builder(assignsThenFails).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .types(bus.codec().types()).build();
        try (failingBus) {
            int tasksBefore = scheduler.pendingTasks();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> SagaOrchestrator.builder()
                    .store(store).bus(failingBus).scheduler(scheduler).register(paySaga()).replyTopic("replies-a")
                    .ownership("a", HEARTBEAT, LEASE).build());

            assertEquals("no assignment within the assignment timeout", e.getMessage());
            assertEquals(Map.of(), store.heartbeats());
            assertEquals(tasksBefore, scheduler.pendingTasks(), "no timer of the failed build left on the scheduler");
            scheduler.advance(HEARTBEAT.multipliedBy(3));
            assertEquals(Map.of(), store.heartbeats(), "no heartbeat written after the failed build");
        }
    }

    @Test
    void aMetricsRecorderThatThrowsAtTheLateHeartbeatARecoveryWritesIsIgnoredAndTheRecoveryGoesOn() {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));
        AtomicBoolean storeDown = new AtomicBoolean();
        SagaStore outage = new RegistryStore(store) {
            @Override
            public void heartbeat(String nodeId, Instant at) {
                if (storeDown.get()) {
                    throw new IllegalStateException("the store is down");
                }
                super.heartbeat(nodeId, at);
            }
        };
        AtomicInteger counted = new AtomicInteger();
        MetricsRecorder failing = new MetricsRecorder() {
            @Override
            public void increment(String name, Map<String, String> tags) {
                counted.incrementAndGet();
                throw new IllegalStateException("the metrics registry is broken");
            }
        };
        SagaOrchestrator nodeB = track(node("b", outage, scheduler, "replies-b").metrics(failing).build());
        storeDown.set(true); // node B's heartbeats fail for a lease (and node A's lease runs out meanwhile)
        scheduler.advance(LEASE);
        storeDown.set(false);

        RecoveryReport report = nodeB.recover(); // its first adoption writes the heartbeat, a lease late: counted

        assertEquals(1, counted.get());
        assertEquals(List.of("late"), report.resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        assertEquals("b", store.find("late").orElseThrow().owner());
        deadClock.close();
    }

    @Test
    void aGracefulCloseLetsAnotherNodeAdoptItsWaitingSagaAtOnce() {
        SagaOrchestrator nodeA = node("a");
        SagaOrchestrator nodeB = node("b");
        startWaiting(nodeA);
        assertEquals(Set.of("a", "b"), store.heartbeats().keySet());

        nodeA.close();
        assertEquals(Set.of("b"), store.heartbeats().keySet(), "close() removes the heartbeat");
        RecoveryReport report = nodeB.recover();

        assertEquals(List.of("paid"), report.resumed());
        assertEquals("b", store.find("paid").orElseThrow().owner());
        transport.drainAll();
        assertEquals(2, commands.size(), "node B sent the command again (same id and idempotency key)");
        assertEquals(commands.get(0).id(), commands.get(1).id());
        SagaMessages.reply(bus, commands.get(1), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("paid").toCompletableFuture().join().outcome());
    }

    @Test
    void aNodePausedPastItsLeaseLearnsAtItsNextWriteThatAnotherNodeAdoptedItsSaga() {
        // Node A pauses (a long GC, a frozen VM): its clock, and so its heartbeat, stand still meanwhile.
        VirtualScheduler pausedClock = new VirtualScheduler();
        SagaOrchestrator nodeA = track(node("a", store, pausedClock, "replies-a").build());
        SagaOrchestrator nodeB = node("b");
        CompletableFuture<SagaResult<Order>> started = startWaiting(nodeA);
        scheduler.advance(LEASE);
        assertEquals(List.of("paid"), nodeB.recover().resumed());
        transport.drainAll();

        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1")); // node A wakes up and gets its reply
        transport.drainAll();

        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(StepStatus.WAITING, store.find("paid").orElseThrow().step("charge").orElseThrow().status(),
                "node A wrote nothing: the saga is node B's");
        assertEquals("b", store.find("paid").orElseThrow().owner());
        pausedClock.close();
    }

    @Test
    void aNodeRestartedUnderItsIdResumesItsOwnSagasAtOnceWithoutAnAdoption() {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator crashed = node("a", store, deadClock, "replies-a").build();
        dieOnce.add("mine");
        assertThrows(Crash.class, () -> crashed.start(shipSaga(), "mine", null, new Order("mine")));

        SagaOrchestrator restarted = node("a"); // its heartbeat is fresh, its sagas its own

        assertEquals(List.of("mine"), restarted.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, store.find("mine").orElseThrow().status());
        assertEquals("a", store.find("mine").orElseThrow().owner());
        assertFalse(store.history("mine").stream().anyMatch(t -> t.type() == TransitionType.SAGA_ADOPTED));
        deadClock.close();
    }

    @Test
    void twoNodesRecoveringAtOnceAdoptEachSagaOnce() throws Exception {
        BarrierStore shared = new BarrierStore(store, 2);
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        List<String> orders = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            String id = "o-" + i;
            orders.add(id);
            dieOnce.add(id);
            assertThrows(Crash.class, () -> nodeA.start(shipSaga(), id, null, new Order(id)));
        }
        store.remove("a"); // as its close() would
        SagaOrchestrator nodeB = track(node("b", shared, scheduler, "replies-b").build());
        SagaOrchestrator nodeC = track(node("c", shared, scheduler, "replies-c").build());

        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            Future<RecoveryReport> b = threads.submit(() -> nodeB.recover());
            Future<RecoveryReport> c = threads.submit(() -> nodeC.recover());
            RecoveryReport byB = b.get(30, TimeUnit.SECONDS);
            RecoveryReport byC = c.get(30, TimeUnit.SECONDS);

            Set<String> resumed = new HashSet<>(byB.resumed());
            byC.resumed().forEach(id -> assertTrue(resumed.add(id), id + " was resumed by both nodes"));
            assertEquals(Set.copyOf(orders), resumed);
        } finally {
            threads.shutdownNow();
        }
        for (String id : orders) {
            assertEquals(2, shipped.get(id).get(), id + ": the crashed run and one adoption");
            assertEquals(SagaStatus.COMPLETED, store.find(id).orElseThrow().status());
            assertEquals(1, store.history(id).stream().filter(t -> t.type() == TransitionType.SAGA_ADOPTED).count());
        }
        deadClock.close();
    }

    @Test
    void aSweepDrivingTheSagasItAdoptsKeepsItsNodesHeartbeatFreshMeanwhile() {
        // Node B's recoverEvery sweeps run on its scheduler's thread, as its heartbeat does: while a sweep drives the
        // sagas it adopted (each step taking 20 s here), that thread runs no heartbeat task.
        StallingScheduler clock = new StallingScheduler(scheduler);
        AtomicReference<SagaOrchestrator> nodeC = new AtomicReference<>();
        AtomicReference<RecoveryReport> seenByC = new AtomicReference<>();
        Set<String> slowOnce = ConcurrentHashMap.newKeySet();
        SagaDefinition<Order> slowSaga = SagaDefinition.builder("slow-saga", Order.class).step("ship").action((order, ctx) -> {
            ship(order);
            if (slowOnce.remove(order.id())) {
                clock.stall(Duration.ofSeconds(20));
                if (order.id().equals("o-2")) { // node C recovers while node B still drives it
                    seenByC.set(nodeC.get().recover());
                }
            }
            return order;
        }).build();
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = SagaOrchestrator.builder().store(store).scheduler(deadClock).register(slowSaga)
                .ownership("a", HEARTBEAT, LEASE).build();
        for (String id : List.of("o-1", "o-2")) {
            dieOnce.add(id);
            assertThrows(Crash.class, () -> nodeA.start(slowSaga, id, null, new Order(id)));
        }
        track(SagaOrchestrator.builder().store(store).scheduler(clock).register(slowSaga)
                .ownership("b", HEARTBEAT, LEASE).recoverEvery(Duration.ofSeconds(20), Duration.ZERO).build());
        nodeC.set(track(SagaOrchestrator.builder().store(store).scheduler(clock).register(slowSaga)
                .ownership("c", HEARTBEAT, LEASE).build()));
        slowOnce.addAll(List.of("o-1", "o-2"));

        scheduler.advance(Duration.ofSeconds(40)); // the second sweep adopts both: node A's lease ran out at 30 s

        assertEquals(List.of(), seenByC.get().resumed());
        assertEquals(List.of(), seenByC.get().unresolvable(), "node B is alive: it drives o-2 right now");
        for (String id : List.of("o-1", "o-2")) {
            assertEquals(SagaStatus.COMPLETED, store.find(id).orElseThrow().status());
            assertEquals("b", store.find(id).orElseThrow().owner());
            assertEquals(2, shipped.get(id).get(), id + ": the crashed run and node B's");
        }
        deadClock.close();
    }

    @Test
    void anErrorFromTheStoreAtAnAdoptionWriteStopsThatRunAsACrashWouldAndTheNextRecoveryResumesTheSaga() {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));
        Set<String> crashAdoptionOf = ConcurrentHashMap.newKeySet();
        crashAdoptionOf.add("late");
        SagaStore crashing = new RegistryStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_ADOPTED && crashAdoptionOf.remove(updated.sagaId())) {
                    throw new Crash(); // an Error from the store, as while a run is driven
                }
                delegate.update(updated, transition);
            }
        };
        SagaOrchestrator nodeB = track(node("b", crashing, scheduler, "replies-b").build());
        scheduler.advance(LEASE);

        assertThrows(Crash.class, nodeB::recover);
        RecoveryReport next = nodeB.recover();

        assertEquals(List.of("late"), next.resumed(), "the run the Error stopped is not left registered and undriven");
        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        assertEquals("b", store.find("late").orElseThrow().owner());
        deadClock.close();
    }

    @Test
    void aRunStoppedByAStoreFailureWhileARecoveryAdoptedItIsReportedUnresolvableNotOwnedElsewhere() throws Exception {
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").build();
        dieOnce.add("late");
        assertThrows(Crash.class, () -> nodeA.start(shipSaga(), "late", null, new Order("late")));
        Thread recovering = Thread.currentThread();
        ExecutorService operator = Executors.newSingleThreadExecutor();
        AtomicReference<SagaOrchestrator> nodeB = new AtomicReference<>();
        AtomicReference<Future<?>> cancel = new AtomicReference<>();
        AtomicBoolean cancelAtHeartbeat = new AtomicBoolean();
        CountDownLatch cancelWriting = new CountDownLatch(1);
        SagaStore failing = new RegistryStore(store) {
            @Override
            public void heartbeat(String nodeId, Instant at) {
                super.heartbeat(nodeId, at);
                if (cancelAtHeartbeat.compareAndSet(true, false)) {
                    // The recovery writes its heartbeat before it adopts "late": an operator cancels it meanwhile.
                    cancel.set(operator.submit(() -> nodeB.get().cancel("late")));
                    await().until(() -> cancelWriting.getCount() == 0);
                }
            }

            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (Thread.currentThread() != recovering) { // the cancel's write, under its run's lock: it fails once
                    cancelWriting.countDown();             // the recovery waits for that lock to claim the run
                    Thread writing = Thread.currentThread();
                    await().until(() -> blockedBy(recovering, writing));
                    throw new IllegalStateException("the store is down");
                }
                delegate.update(updated, transition);
            }
        };
        StallingScheduler stalling = new StallingScheduler(scheduler);
        nodeB.set(track(SagaOrchestrator.builder().store(failing).scheduler(stalling).register(shipSaga())
                .ownership("b", HEARTBEAT, LEASE).build()));
        scheduler.advance(LEASE);
        stalling.stall(HEARTBEAT); // so that the recovery writes the heartbeat itself
        cancelAtHeartbeat.set(true);

        RecoveryReport report = nodeB.get().recover();

        assertEquals(List.of("late"), report.unresolvable(), "the run stopped on a store failure, no node adopted it: " + report);
        assertEquals(List.of(), report.ownedElsewhere());
        assertEquals(List.of(), report.resumed());
        ExecutionException e = assertThrows(ExecutionException.class, () -> cancel.get().get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause().getMessage().contains("the store is down"), e.getCause().toString());
        operator.shutdown();
        assertEquals("a", store.find("late").orElseThrow().owner(), "nothing was written");
        deadClock.close();
    }

    /** Whether {@code thread} waits to enter a monitor that {@code holder} holds. */
    private static boolean blockedBy(Thread thread, Thread holder) {
        ThreadInfo info = ManagementFactory.getThreadMXBean().getThreadInfo(thread.getId());
        return info != null && info.getThreadState() == Thread.State.BLOCKED && info.getLockOwnerId() == holder.getId();
    }

    @Test
    void aNodeRestartedDuringAnotherNodesRecoveryKeepsTheSagasItResumedItself() {
        // Node B's recovery judges node A dead, then drives the first saga it adopts; meanwhile node A restarts under
        // its id and resumes its waiting saga itself (no write: it is its own). B must not adopt that one as well.
        AtomicReference<SagaOrchestrator> restarted = new AtomicReference<>();
        AtomicReference<RecoveryReport> restartReport = new AtomicReference<>();
        AtomicReference<SagaDefinition<Order>> self = new AtomicReference<>();
        SagaDefinition<Order> restartingSaga = SagaDefinition.builder("restart-saga", Order.class).step("ship")
                .action((order, ctx) -> {
                    ship(order);
                    if (restarted.get() == null && shipped.get(order.id()).get() == 2) { // node B drives it
                        restarted.set(track(node("a", store, scheduler, "replies-a2").register(self.get())
                                .build()));
                        restartReport.set(restarted.get().recover());
                    }
                    return order;
                }).build();
        self.set(restartingSaga);
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = node("a", store, deadClock, "replies-a").register(restartingSaga).build();
        dieOnce.add("first");
        assertThrows(Crash.class, () -> nodeA.start(restartingSaga, "first", null, new Order("first")));
        startWaiting(nodeA); // "paid": its command sent, its reply awaited
        SagaOrchestrator nodeB = track(node("b", store, scheduler, "replies-b").register(restartingSaga).build());
        scheduler.advance(LEASE);

        RecoveryReport byB = nodeB.recover();

        assertEquals(List.of("paid"), restartReport.get().resumed(), "node A resumed its own waiting saga");
        assertEquals(List.of("first"), byB.resumed());
        assertEquals(List.of("paid"), byB.ownedElsewhere(), "node A is alive again: its saga is left to it");
        assertEquals("a", store.find("paid").orElseThrow().owner());
        assertFalse(store.history("paid").stream().anyMatch(t -> t.type() == TransitionType.SAGA_ADOPTED));
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(commands.size() - 1), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(SagaOutcome.COMPLETED, restarted.get().result("paid").toCompletableFuture().join().outcome());
        deadClock.close();
    }

    @Test
    void ofTwoNodesMigratingADeadNodesSagaAtOnceTheOneWhoseMigrationLostLeavesItToTheOther() {
        List<String> charges = new CopyOnWriteArrayList<>();
        SagaDefinition<Order> v1 = SagaDefinition.builder("mig-saga", Order.class).step("charge")
                .asyncAction((order, ctx) -> {
                    charges.add("v1");
                    return new CompletableFuture<Order>(); // in flight when node A dies
                }).build();
        SagaDefinition<Order> v2 = SagaDefinition.builder("mig-saga", Order.class).version(2).step("charge")
                .asyncAction((order, ctx) -> {
                    charges.add("v2");
                    return new CompletableFuture<Order>();
                }).build();
        VirtualScheduler deadClock = new VirtualScheduler();
        SagaOrchestrator nodeA = SagaOrchestrator.builder().store(store).scheduler(deadClock).register(v1)
                .ownership("a", HEARTBEAT, LEASE).build();
        nodeA.start(v1, "m-1", null, new Order("m-1"));
        SagaOrchestrator nodeC = track(SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("mig-saga", 1, data -> data).ownership("c", HEARTBEAT, LEASE).build());
        AtomicReference<RecoveryReport> byC = new AtomicReference<>();
        SagaStore migratingLate = new RegistryStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_MIGRATED && byC.get() == null) {
                    byC.set(nodeC.recover()); // node C migrates and adopts it first
                }
                delegate.update(updated, transition);
            }
        };
        SagaOrchestrator nodeB = track(SagaOrchestrator.builder().store(migratingLate).scheduler(scheduler).register(v2)
                .dataUpcaster("mig-saga", 1, data -> data).ownership("b", HEARTBEAT, LEASE).build());
        scheduler.advance(LEASE);

        RecoveryReport byB = nodeB.recover();

        assertEquals(List.of("m-1"), byC.get().resumed());
        assertEquals(List.of(), byB.resumed(), "node C, alive, drives it");
        assertEquals(List.of("v1", "v2"), charges, "the charge ran again once, at node C");
        assertEquals("c", store.find("m-1").orElseThrow().owner());
        deadClock.close();
    }

    @Test
    void withoutOwnershipSagasHaveNoOwnerNoHeartbeatIsWrittenAndRecoverAdoptsAsBefore() {
        SagaOrchestrator nodeA = track(SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(paySaga()).replyTopic("replies-a").build());
        SagaOrchestrator nodeB = track(SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(paySaga()).replyTopic("replies-b").build());
        startWaiting(nodeA);
        assertNull(store.find("paid").orElseThrow().owner());
        assertEquals(Map.of(), store.heartbeats());

        assertEquals(List.of("paid"), nodeB.recover().resumed());
        assertNull(store.find("paid").orElseThrow().owner(), "an adoption without ownership writes nothing");
        assertFalse(store.history("paid").stream().anyMatch(t -> t.type() == TransitionType.SAGA_ADOPTED));
    }

    @Test
    void theHeartbeatIsWrittenAtBuildThenEveryIntervalAndCloseStopsAndRemovesIt() {
        Instant t0 = scheduler.now();
        SagaOrchestrator nodeA = node("a");
        assertEquals(Map.of("a", t0), store.heartbeats(), "written at build, before any recover()");

        scheduler.advance(HEARTBEAT.multipliedBy(3));
        assertEquals(Map.of("a", t0.plus(HEARTBEAT.multipliedBy(3))), store.heartbeats());

        nodeA.close();
        assertEquals(Map.of(), store.heartbeats());
        scheduler.advance(HEARTBEAT.multipliedBy(3));
        assertEquals(Map.of(), store.heartbeats(), "no heartbeat after close()");
    }

    @Test
    void aBuildThatFailsAfterTheHeartbeatWasWrittenRemovesIt() {
        // A node restarted under its id whose build fails (here: its transport cannot subscribe to the replies) is not
        // alive: its heartbeat must not keep the other nodes from adopting its sagas (a node crash-looping on it would
        // renew it at each start).
        InMemoryTransport down = InMemoryTransport.builder().build();
        down.close();
        EventBus downBus = EventBus.builder(down).scheduler(scheduler).types(bus.codec().types()).build();
        RuntimeException e = assertThrows(RuntimeException.class, () -> SagaOrchestrator.builder().store(store)
                .bus(downBus).scheduler(scheduler).register(paySaga()).ownership("a", HEARTBEAT, LEASE).build());

        assertTrue(e.getMessage().contains("transport is closed"), e.getMessage());
        assertEquals(Map.of(), store.heartbeats());
        downBus.close();
    }

    @Test
    void ownershipIsRefusedOverAStoreThatIsNoNodeRegistryAndWithBadValues() {
        SagaStore plain = new BarrierStore(store, 1).withoutRegistry();
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder()
                .store(plain).scheduler(scheduler).ownership("a", HEARTBEAT, LEASE).build());
        assertTrue(e.getMessage().contains("NodeRegistry"), e.getMessage());
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().ownership("a", HEARTBEAT, HEARTBEAT));
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().ownership(" ", HEARTBEAT, LEASE));
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().ownership("a", Duration.ZERO, LEASE));
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().ownership("a", HEARTBEAT, null));
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().ownership("x".repeat(201), HEARTBEAT, LEASE));
    }

    @Test
    void aNodeIdWithANulCharacterIsRefusedByOwnershipNotLaterByAStore() {
        // ownership(...) took a node id holding U+0000, which is written with every saga and heartbeat: the in-memory
        // store kept it, JdbcSagaStore refused it (PostgreSQL cannot store it) only when the orchestrator wrote its
        // heartbeat or a saga. It is now refused where the node id is given, whatever the store.
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> SagaOrchestrator.builder().ownership("node\0a", HEARTBEAT, LEASE));
        assertEquals("the node id must not contain the character U+0000 (NUL), which a durable store cannot hold,"
                + " but was 'node\\u0000a'", e.getMessage());
    }

    @Test
    void aNodeIdWithALoneSurrogateIsRefusedByOwnershipAsOneWithANulCharacterIs() {
        // ownership(...) took a node id holding a lone surrogate (a UTF-16 surrogate that is not half of a pair), which
        // PostgreSQL's driver writes as '?': two nodes "node-\uD800" and "node-\uDC00" would own each other's sagas
        // there (JdbcSagaStore now refuses such a node id). It is refused where the node id is given, whatever the
        // store, as U+0000 is; a well-formed pair (an emoji) is an ordinary character.
        for (String nodeId : new String[] {"node-\uD800", "node-\uDC00", "\uDC00\uD800"}) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> SagaOrchestrator.builder().ownership(nodeId, HEARTBEAT, LEASE));
            assertTrue(e.getMessage().startsWith("the node id must not contain a lone surrogate (a UTF-16 surrogate"
                    + " that is not half of a pair), which a durable store cannot hold as it is, but was '"), e.getMessage());
        }
        SagaOrchestrator.builder().ownership("node-\uD83D\uDE00", HEARTBEAT, LEASE);
    }

    @Test
    void aRefusedNodeIdIsQuotedAsItsFirstCharactersAndItsLengthNotWhole() {
        // The refusal quoted the whole node id: a 1 MB one went whole into the exception's message and the logs. As
        // the JDBC stores' refusals, it is quoted whole up to 64 characters, else its first 64 and its length.
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> SagaOrchestrator.builder().ownership("x".repeat(1_000_000), HEARTBEAT, LEASE));
        assertEquals("the node id must be 1 to 200 characters and not blank, but was '" + "x".repeat(64)
                + "...' (1000000 characters)", e.getMessage());
    }

    /**
     * The test's virtual scheduler, whose clock a slow step moves on without running any task: as a real scheduler
     * thread busy with that step runs its other tasks (a heartbeat) late.
     */
    private static final class StallingScheduler implements Scheduler {
        private final VirtualScheduler virtual;
        private final AtomicReference<Duration> stalled = new AtomicReference<>(Duration.ZERO);
        private final Clock clock = new Clock() {
            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(ZoneId zone) {
                return this;
            }

            @Override
            public Instant instant() {
                return virtual.now().plus(stalled.get());
            }
        };

        StallingScheduler(VirtualScheduler virtual) {
            this.virtual = virtual;
        }

        /** The thread is busy for {@code duration}: time passes, no task runs. */
        void stall(Duration duration) {
            stalled.accumulateAndGet(duration, Duration::plus);
        }

        @Override
        public Clock clock() {
            return clock;
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return virtual.schedule(delay, task);
        }

        @Override
        public void sleep(Duration delay) {
            virtual.sleep(delay);
        }

        @Override
        public void close() {
        }
    }

    /** The in-memory store and registry, as a store that writes one transition at a time (tests override a write). */
    private static class RegistryStore extends ForwardingSagaStore implements NodeRegistry {
        private final InMemorySagaStore registry;

        RegistryStore(InMemorySagaStore delegate) {
            super(delegate);
            this.registry = delegate;
        }

        @Override
        public void heartbeat(String nodeId, Instant at) {
            registry.heartbeat(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            return registry.heartbeats();
        }

        @Override
        public void remove(String nodeId) {
            registry.remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            return registry.remove(nodeId, at);
        }
    }

    /**
     * The in-memory store and registry, whose query of unfinished sagas waits until {@code parties} recoveries made it
     * (so that they all read the same versions before any adopts).
     */
    private static final class BarrierStore extends ForwardingSagaStore implements NodeRegistry {
        private final InMemorySagaStore registry;
        private final CyclicBarrier barrier;

        BarrierStore(InMemorySagaStore delegate, int parties) {
            super(delegate);
            this.registry = delegate;
            this.barrier = new CyclicBarrier(parties);
        }

        /** The same store as a plain SagaStore. */
        SagaStore withoutRegistry() {
            return new ForwardingSagaStore(delegate) {
            };
        }

        @Override
        public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
            List<SagaInstance> found = delegate.findByStatus(statuses);
            try {
                barrier.await(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IllegalStateException("the other recovery did not read the store", e);
            }
            return found;
        }

        @Override
        public void heartbeat(String nodeId, Instant at) {
            registry.heartbeat(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            return registry.heartbeats();
        }

        @Override
        public void remove(String nodeId) {
            registry.remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            return registry.remove(nodeId, at);
        }
    }
}
