package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.spi.SagaStore;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Recovery with several nodes": several orchestrators over one store, each started with
 * {@code recover(idleFor)}, leave alone the sagas another live orchestrator drives and resume the abandoned ones.
 */
class RecoveryWithSeveralNodesTest {
    record Order(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    record Refund(String id) {
    }

    record Refunded(String id) {
    }

    /** The process dies in the action. */
    static final class Crash extends SimulatedProcessCrash {
        Crash() {
            super("the node died");
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    /** Runs of the ship action per order. */
    private final Map<String, AtomicInteger> shipped = new ConcurrentHashMap<>();
    /** Orders whose first ship attempt dies with its node. */
    private final Map<String, Boolean> dieOnce = new ConcurrentHashMap<>();
    private final CountDownLatch liveEntered = new CountDownLatch(1);
    private final CountDownLatch liveRelease = new CountDownLatch(1);
    private final ExecutorService callerThread = Executors.newSingleThreadExecutor();

    @AfterEach
    void tearDown() {
        liveRelease.countDown();
        callerThread.shutdownNow();
    }

    /** One local step; order "live" blocks in its first run until released, orders in dieOnce crash once. */
    private SagaDefinition<Order> shipSaga() {
        return SagaDefinition.builder("ship-saga", Order.class)
                .step("ship").action((order, ctx) -> {
                    int run = shipped.computeIfAbsent(order.id(), id -> new AtomicInteger()).incrementAndGet();
                    if (dieOnce.remove(order.id()) != null) {
                        throw new Crash();
                    }
                    if (order.id().equals("live") && run == 1) {
                        liveEntered.countDown();
                        liveRelease.await();
                    }
                    return order;
                })
                .build();
    }

    private SagaOrchestrator node() {
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(shipSaga()).build();
    }

    private void abandon(String orderId) {
        SagaOrchestrator dying = node();
        dieOnce.put(orderId, true);
        assertThrows(Crash.class, () -> dying.start(shipSaga(), orderId, null, new Order(orderId)));
        assertEquals(StepStatus.RUNNING, store.find(orderId).orElseThrow().step("ship").orElseThrow().status());
    }

    /** Starts order "live" on {@code node} on another thread and returns once its action runs. */
    private CompletableFuture<CompletionStage<SagaResult<Order>>> startLive(SagaOrchestrator node) throws InterruptedException {
        CompletableFuture<CompletionStage<SagaResult<Order>>> started = CompletableFuture.supplyAsync(
                () -> node.start(shipSaga(), "live", null, new Order("live")), callerThread);
        assertTrue(liveEntered.await(30, TimeUnit.SECONDS), "the live saga's action did not start");
        return started;
    }

    @Test
    void recoverWithoutIdleForAdoptsASagaThatALiveNodeIsDriving() throws Exception {
        // What recover() does (and keeps doing): the reason recover(idleFor) exists.
        SagaOrchestrator nodeA = node();
        CompletableFuture<CompletionStage<SagaResult<Order>>> started = startLive(nodeA);

        SagaOrchestrator nodeB = node();
        assertEquals(List.of("live"), nodeB.recover().resumed());
        liveRelease.countDown();

        assertEquals(2, shipped.get("live").get(), "the step in flight on node A ran again on node B");
        assertEquals(SagaStatus.COMPLETED, store.find("live").orElseThrow().status());
        CompletionException e = assertThrows(CompletionException.class,
                () -> started.join().toCompletableFuture().join());
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        nodeA.close();
        nodeB.close();
    }

    @Test
    void recoverIdleForLeavesTheSagaALiveNodeDrivesAloneAndResumesAnAbandonedOne() throws Exception {
        abandon("abandoned");
        scheduler.advance(Duration.ofMinutes(10));
        SagaOrchestrator nodeA = node();
        CompletableFuture<CompletionStage<SagaResult<Order>>> started = startLive(nodeA);
        scheduler.advance(Duration.ofMinutes(1));

        SagaOrchestrator nodeB = node(); // starts (or restarts) while node A drives "live"
        SagaOrchestrator.RecoveryReport report = nodeB.recover(Duration.ofMinutes(5));

        assertEquals(List.of("abandoned"), report.resumed());
        assertEquals(List.of(), report.recentlyUpdated(), "updated within idleFor: left out by the store, not read");
        assertEquals(List.of(), report.unresolvable());
        assertEquals(SagaStatus.COMPLETED, store.find("abandoned").orElseThrow().status());
        assertEquals(2, shipped.get("abandoned").get(), "the abandoned step runs again, once");
        assertEquals(1, shipped.get("live").get(), "node B left the live saga alone");

        liveRelease.countDown();
        SagaResult<Order> result = started.get(30, TimeUnit.SECONDS).toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(1, shipped.get("live").get());
        assertEquals(SagaStatus.COMPLETED, store.find("live").orElseThrow().status());
        nodeA.close();
        nodeB.close();
    }

    @Test
    void aSagaUpdatedExactlyIdleForAgoIsResumedAnEndlessIdleForResumesNothingAndRecoverIsRecoverIdleForZero() {
        abandon("abandoned");
        scheduler.advance(Duration.ofMinutes(5));
        SagaOrchestrator node = node();

        SagaOrchestrator.RecoveryReport report = node.recover(Duration.ofMinutes(5));

        assertEquals(List.of("abandoned"), report.resumed());
        assertEquals(List.of(), report.recentlyUpdated());
        abandon("just-now");
        assertEquals(new SagaOrchestrator.RecoveryReport(List.of(), List.of(), List.of()),
                node.recover(ChronoUnit.FOREVER.getDuration()),
                "an idleFor longer than the clock goes back resumes nothing (nor reads anything)");
        assertEquals(new SagaOrchestrator.RecoveryReport(List.of("just-now"), List.of(), List.of()),
                node.recover(Duration.ZERO));
        node.close();
    }

    @Test
    void aNullOrNegativeIdleForIsRefused() {
        SagaOrchestrator node = node();
        ConfigurationException nullIdle = assertThrows(ConfigurationException.class, () -> node.recover(null));
        assertTrue(nullIdle.getMessage().contains("idleFor must be zero or positive, but was null"), nullIdle.getMessage());
        ConfigurationException negative = assertThrows(ConfigurationException.class,
                () -> node.recover(Duration.ofSeconds(-1)));
        assertTrue(negative.getMessage().contains("but was PT-1S"), negative.getMessage());
        node.close();

        SagaOrchestrator.Builder builder = SagaOrchestrator.builder();
        assertThrows(ConfigurationException.class, () -> builder.recoverEvery(null, Duration.ofMinutes(1)));
        assertThrows(ConfigurationException.class, () -> builder.recoverEvery(Duration.ZERO, Duration.ofMinutes(1)));
        assertThrows(ConfigurationException.class, () -> builder.recoverEvery(Duration.ofMinutes(-1), Duration.ofMinutes(1)));
        assertThrows(ConfigurationException.class, () -> builder.recoverEvery(Duration.ofMinutes(1), null));
        ConfigurationException idle = assertThrows(ConfigurationException.class,
                () -> builder.recoverEvery(Duration.ofMinutes(1), Duration.ofMinutes(-2)));
        assertTrue(idle.getMessage().contains("but was PT-2M"), idle.getMessage());
    }

    @Test
    void recoverEveryResumesTheSagaOfANodeThatDiedAfterTheStartUpSweepOnceIdleForIdleFor() {
        SagaOrchestrator survivor = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(shipSaga())
                .recoverEvery(Duration.ofMinutes(1), Duration.ofMinutes(5)).build();
        assertEquals(List.of(), survivor.recover(Duration.ofMinutes(5)).resumed());
        abandon("late"); // another node dies after the survivor's start-up sweep

        scheduler.advance(Duration.ofMinutes(4));
        assertEquals(SagaStatus.RUNNING, store.find("late").orElseThrow().status(), "idle for less than 5 minutes");
        assertEquals(1, shipped.get("late").get());
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        assertEquals(2, shipped.get("late").get());
        assertEquals(SagaOutcome.COMPLETED, survivor.result("late").toCompletableFuture().join().outcome());
        survivor.close();
        assertEquals(0, scheduler.pendingTasks(), "close() stops the sweeps");
    }

    // ------------------------------------------------------------------ a remote step adopted while it waits

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                    .register("refund", 1, Refund.class).register("refunded", 1, Refunded.class).build())
            .build();
    private final List<Message> commands = new CopyOnWriteArrayList<>();

    @AfterEach
    void closeBus() {
        bus.close();
        transport.close();
    }

    /** charge (remote, waits up to a day) then ship (local). */
    private SagaDefinition<Order> paySaga() {
        return SagaDefinition.builder("pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .timeout(Duration.ofDays(1))
                .step("ship").action((order, ctx) -> {
                    shipped.computeIfAbsent(order.id(), id -> new AtomicInteger()).incrementAndGet();
                    return order;
                })
                .build();
    }

    /** A node; each replies on a topic of its own here, so that the test decides which node a reply reaches. */
    private SagaOrchestrator payNode(String replyTopic) {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(paySaga())
                .replyTopic(replyTopic).build();
    }

    /** Node A sends the command and waits for hours; node B's recover(1h) adopts the saga and sends it again. */
    private CompletableFuture<SagaResult<Order>> waitingSagaAdoptedByB(SagaOrchestrator nodeA, SagaOrchestrator nodeB) {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        CompletableFuture<SagaResult<Order>> started =
                nodeA.start(paySaga(), "paid", null, new Order("paid")).toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2));

        assertEquals(List.of("paid"), nodeB.recover(Duration.ofHours(1)).resumed(), "a waiting saga is idle");
        transport.drainAll();
        assertEquals(2, commands.size(), "node B sent the command again (same id and idempotency key)");
        assertEquals(commands.get(0).id(), commands.get(1).id());
        return started;
    }

    @Test
    void aReplyReachingTheNodeThatSentTheCommandCompletesTheAdoptedSagaThereAndItsCallerGetsTheResult() {
        SagaOrchestrator nodeA = payNode("replies-a");
        SagaOrchestrator nodeB = payNode("replies-b");
        CompletableFuture<SagaResult<Order>> started = waitingSagaAdoptedByB(nodeA, nodeB);

        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1")); // to node A
        transport.drainAll();

        assertEquals(SagaOutcome.COMPLETED, started.join().outcome(), "node A's caller gets the result");
        assertEquals(1, shipped.get("paid").get());
        long finalVersion = store.find("paid").orElseThrow().version();
        // Node B still waits for a reply: at the step's deadline it finds the saga moved on and lets it go.
        scheduler.advance(Duration.ofDays(1));
        SagaMessages.reply(bus, commands.get(1), new Charged("ch-1")); // the participant's answer to B's command
        transport.drainAll();

        assertEquals(SagaStatus.COMPLETED, store.find("paid").orElseThrow().status());
        assertEquals(finalVersion, store.find("paid").orElseThrow().version(), "node B wrote nothing");
        assertFalse(store.history("paid").stream().anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT));
        assertEquals(1, shipped.get("paid").get());
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("paid").toCompletableFuture().join().outcome());
        nodeA.close();
        nodeB.close();
    }

    @Test
    void aReplyReachingTheAdoptingNodeCompletesTheSagaThereAndTheFirstNodesCallerLearnsOfItOnlyAtTheStepsDeadline() {
        SagaOrchestrator nodeA = payNode("replies-a");
        SagaOrchestrator nodeB = payNode("replies-b");
        CompletableFuture<SagaResult<Order>> started = waitingSagaAdoptedByB(nodeA, nodeB);

        SagaMessages.reply(bus, commands.get(1), new Charged("ch-1")); // to node B
        transport.drainAll();

        assertEquals(SagaStatus.COMPLETED, store.find("paid").orElseThrow().status());
        assertEquals(1, shipped.get("paid").get());
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("paid").toCompletableFuture().join().outcome());
        assertFalse(started.isDone(), "node A still waits for the reply");
        long finalVersion = store.find("paid").orElseThrow().version();

        scheduler.advance(Duration.ofDays(1)); // node A's timeout: the store refuses its stale write
        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1")); // the answer to A's command: ignored
        transport.drainAll();

        assertEquals(finalVersion, store.find("paid").orElseThrow().version(), "node A wrote nothing");
        assertEquals(1, shipped.get("paid").get());
        assertEquals(SagaOutcome.COMPLETED, nodeA.result("paid").toCompletableFuture().join().outcome());
        nodeA.close();
        nodeB.close();
    }

    // ------------------------------------------------------------------ a run that lost its saga to another node

    /** charge (remote, no timeout: nothing but a reply wakes the run) then ship (local). */
    private SagaDefinition<Order> patientPaySaga() {
        return SagaDefinition.builder("patient-pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .step("ship").action((order, ctx) -> {
                    shipped.computeIfAbsent(order.id(), id -> new AtomicInteger()).incrementAndGet();
                    return order;
                })
                .build();
    }

    private SagaOrchestrator patientNode(String replyTopic) {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(patientPaySaga())
                .replyTopic(replyTopic).build();
    }

    @Test
    void aRunWhoseSagaAnotherNodeFinishedIsDroppedByItsOwnRecoveryAndItsCallerGetsAConcurrentSagaUpdateException() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator nodeA = patientNode("replies-a");
        SagaOrchestrator nodeB = patientNode("replies-b");
        CompletableFuture<SagaResult<Order>> started =
                nodeA.start(patientPaySaga(), "paid", null, new Order("paid")).toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2));
        assertEquals(List.of("paid"), nodeB.recover(Duration.ofHours(1)).resumed());
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(1), new Charged("ch-1")); // reaches node B, which completes the saga
        transport.drainAll();
        assertEquals(SagaStatus.COMPLETED, store.find("paid").orElseThrow().status());
        long finalVersion = store.find("paid").orElseThrow().version();
        assertFalse(started.isDone(), "node A's run still waits: no timeout, and the reply went to node B");

        nodeA.recover(Duration.ofHours(1));

        assertTrue(started.isDone(), "node A's recovery dropped the run that lost the saga");
        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(SagaOutcome.COMPLETED, nodeA.result("paid").toCompletableFuture().join().outcome(),
                "node A no longer drives it: result() answers from the store");
        assertEquals(finalVersion, store.find("paid").orElseThrow().version(), "node A wrote nothing");
        assertEquals(1, shipped.get("paid").get());
        nodeA.close();
        nodeB.close();
    }

    @Test
    void aRunWhoseSagaAnotherNodeMovedOnIsDroppedByItsOwnRecoveryWhichThenTreatsTheSagaAsAnyOther() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator nodeA = patientNode("replies-a");
        CompletableFuture<SagaResult<Order>> started =
                nodeA.start(patientPaySaga(), "paid", null, new Order("paid")).toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2));
        // Another node writes the saga (as its adoption's next write would) and goes on driving it.
        SagaInstance s = store.find("paid").orElseThrow();
        SagaInstance moved = new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(),
                s.dataType(), s.data(), s.status(), s.steps(), s.failure(), s.compensationFailure(), s.createdAt(),
                scheduler.now(), s.version() + 1);
        store.update(moved, new SagaTransition("paid", moved.version(), scheduler.now(), TransitionType.STEP_WAITING,
                "charge", 1, "another node"));

        SagaOrchestrator.RecoveryReport report = nodeA.recover(Duration.ofHours(1));

        assertTrue(started.isDone(), "node A's recovery dropped the run that lost the saga");
        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(List.of("paid"), report.recentlyUpdated(), "just written by the other node: left alone");
        assertEquals(List.of(), report.resumed());
        scheduler.advance(Duration.ofHours(2)); // the other node died meanwhile
        assertEquals(List.of("paid"), nodeA.recover(Duration.ofHours(1)).resumed());
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(commands.size() - 1), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(SagaOutcome.COMPLETED, nodeA.result("paid").toCompletableFuture().join().outcome());
        assertEquals(1, shipped.get("paid").get());
        nodeA.close();
    }

    // ------------------------------------------------------------------ a recovery racing the node's own work

    /** The store, running {@code hook} once right after a recovery's query read the unfinished sagas. */
    private SagaStore storeWithHookAfterQuery(AtomicReference<Runnable> hook) {
        return new ForwardingSagaStore(store) {
            @Override
            public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
                List<SagaInstance> found = delegate.findByStatus(statuses);
                Runnable once = hook.getAndSet(null);
                if (once != null) {
                    once.run();
                }
                return found;
            }
        };
    }

    @Test
    void aSagaThatFinishesHereWhileARecoveryReadsTheStoreIsNotAdoptedFromTheStaleReadingAndItsResultStaysTheOutcome() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        AtomicReference<Runnable> hook = new AtomicReference<>();
        SagaOrchestrator node = SagaOrchestrator.builder().store(storeWithHookAfterQuery(hook)).bus(bus)
                .scheduler(scheduler).register(paySaga()).replyTopic("replies-a").build();
        CompletableFuture<SagaResult<Order>> started =
                node.start(paySaga(), "paid", null, new Order("paid")).toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2));
        hook.set(() -> { // the reply arrives while the recovery goes through what it read: the saga finishes here
            SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));
            transport.drainAll();
        });

        SagaOrchestrator.RecoveryReport report = node.recover(Duration.ofHours(1));

        assertEquals(SagaOutcome.COMPLETED, started.join().outcome());
        assertEquals(List.of(), report.resumed(), "it read the saga as waiting, but it finished meanwhile");
        transport.drainAll();
        assertEquals(1, commands.size(), "no command sent again for a step that moved on");
        CompletableFuture<SagaResult<Object>> result = node.result("paid").toCompletableFuture();
        assertTrue(result.isDone(), "the outcome, not a run adopted from the stale reading that waits for a reply");
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
        node.close();
    }

    @Test
    void aRecoveryThatCloseOvertakesResumesNothingAfterCloseReturned() {
        abandon("abandoned");
        scheduler.advance(Duration.ofMinutes(10));
        AtomicReference<Runnable> hook = new AtomicReference<>();
        SagaOrchestrator node = SagaOrchestrator.builder().store(storeWithHookAfterQuery(hook)).scheduler(scheduler)
                .register(shipSaga()).build();
        hook.set(node::close); // close() (on another thread, say) while the recovery goes through what it read
        long version = store.find("abandoned").orElseThrow().version();

        assertThrows(SagaException.class, () -> node.recover(Duration.ofMinutes(5)));

        assertEquals(version, store.find("abandoned").orElseThrow().version(), "nothing written after close()");
        assertEquals(1, shipped.get("abandoned").get());
        assertEquals(0, scheduler.pendingTasks());
    }
    /** The store, running {@code hook} once at the first read of one saga after it is set. */
    private SagaStore storeWithHookAtFind(AtomicReference<Runnable> hook) {
        return new ForwardingSagaStore(store) {
            @Override
            public java.util.Optional<SagaInstance> find(String sagaId) {
                Runnable once = hook.getAndSet(null);
                if (once != null) {
                    once.run();
                }
                return delegate.find(sagaId);
            }
        };
    }

    @Test
    void aResultAskedForWhileARecoveryDropsTheRunItAdoptedFromAStaleReadingCompletesWithAConcurrentSagaUpdateException() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator nodeA = patientNode("replies-a");
        nodeA.start(patientPaySaga(), "paid", null, new Order("paid"));
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2));
        AtomicReference<Runnable> hook = new AtomicReference<>();
        SagaOrchestrator nodeB = SagaOrchestrator.builder().store(storeWithHookAtFind(hook)).bus(bus)
                .scheduler(scheduler).register(patientPaySaga()).replyTopic("replies-b").build();
        AtomicReference<CompletableFuture<SagaResult<Object>>> asked = new AtomicReference<>();
        hook.set(() -> { // node B's recovery registered its run and reads the saga again: meanwhile, on other threads,
            asked.set(nodeB.result("paid").toCompletableFuture()); // a caller asks for the result
            SagaInstance s = store.find("paid").orElseThrow(); // and node A writes the saga
            SagaInstance moved = new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(),
                    s.dataType(), s.data(), s.status(), s.steps(), s.failure(), s.compensationFailure(), s.createdAt(),
                    scheduler.now(), s.version() + 1);
            store.update(moved, new SagaTransition("paid", moved.version(), scheduler.now(), TransitionType.STEP_WAITING,
                    "charge", 1, "node A"));
        });

        assertEquals(List.of(), nodeB.recover(Duration.ofHours(1)).resumed(), "moved since read: left alone");

        CompletableFuture<SagaResult<Object>> result = asked.get();
        assertTrue(result.isDone(), "the run it asked was dropped: its result must not wait forever");
        CompletionException e = assertThrows(CompletionException.class, result::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        nodeA.close();
        nodeB.close();
    }
    @Test
    void aRunARecoveryAdoptedThatAnOperatorCallWritesBeforeTheRecoveryChecksItStaysDrivenAndItsResultCompletes() {
        SagaDefinition<Order> refundable = SagaDefinition.builder("refundable-pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .compensationCommand("refund-commands", (order, ctx) -> new Refund(order.id()))
                .onCompensationReply(Refunded.class, (order, reply) -> { })
                .build();
        List<Message> refunds = new CopyOnWriteArrayList<>();
        bus.subscribe("payment-service", "refund-commands", Refund.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> refunds.add(ctx.message()));
        SagaOrchestrator nodeA = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(refundable).replyTopic("replies-a").build();
        nodeA.start(refundable, "paid", null, new Order("paid"));
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2)); // node A died
        AtomicReference<Runnable> hook = new AtomicReference<>();
        SagaOrchestrator nodeB = SagaOrchestrator.builder().store(storeWithHookAtFind(hook)).bus(bus)
                .scheduler(scheduler).register(refundable).replyTopic("replies-b").build();
        AtomicReference<CompletableFuture<SagaResult<Object>>> asked = new AtomicReference<>();
        hook.set(() -> { // node B's recovery registered its run and reads the saga again: meanwhile, on other threads,
            nodeB.cancel("paid"); // an operator cancels it (through that run: it sends the refund and waits)
            asked.set(nodeB.result("paid").toCompletableFuture()); // and a caller asks for the result
        });

        nodeB.recover(Duration.ofHours(1));
        transport.drainAll();
        assertEquals(1, refunds.size());
        SagaMessages.reply(bus, refunds.get(0), new Refunded("paid"));
        transport.drainAll();

        assertEquals(SagaStatus.COMPENSATED, store.find("paid").orElseThrow().status());
        CompletableFuture<SagaResult<Object>> result = asked.get();
        assertTrue(result.isDone(), "the run that wrote the cancellation is the one that got the refund's reply");
        assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
        nodeA.close();
        nodeB.close();
    }
    @Test
    void aStoreFailureWhileARecoveryChecksTheRunItAdoptedLeavesNoUndrivenRunBehindAndTheNextRecoveryResumesTheSaga() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        SagaOrchestrator nodeA = patientNode("replies-a");
        nodeA.start(patientPaySaga(), "paid", null, new Order("paid"));
        transport.drainAll();
        scheduler.advance(Duration.ofHours(2)); // node A died
        AtomicReference<Runnable> hook = new AtomicReference<>();
        SagaOrchestrator nodeB = SagaOrchestrator.builder().store(storeWithHookAtFind(hook)).bus(bus)
                .scheduler(scheduler).register(patientPaySaga()).replyTopic("replies-b").build();
        hook.set(() -> {
            throw new IllegalStateException("the store is unreachable for a moment");
        });

        assertEquals(List.of("paid"), nodeB.recover(Duration.ofHours(1)).unresolvable());

        assertEquals(List.of("paid"), nodeB.recover(Duration.ofHours(1)).resumed(), "the store is back");
        transport.drainAll();
        assertEquals(2, commands.size(), "its command sent again by node B");
        SagaMessages.reply(bus, commands.get(1), new Charged("ch-1"));
        transport.drainAll();
        assertEquals(SagaOutcome.COMPLETED, nodeB.result("paid").toCompletableFuture().join().outcome());
        nodeA.close();
        nodeB.close();
    }

    // ------------------------------------------------------------------ a store failure while checking the runs driven here

    /** The store, failing every find of the sagas in {@code failing}. */
    private SagaStore storeFailingFindOf(Set<String> failing) {
        return new ForwardingSagaStore(store) {
            @Override
            public java.util.Optional<SagaInstance> find(String sagaId) {
                if (failing.contains(sagaId)) {
                    throw new IllegalStateException("the store is unreachable for a moment");
                }
                return delegate.find(sagaId);
            }
        };
    }

    /** Another node writes saga {@code id} (as its adoption would), with {@code status}. */
    private void writtenElsewhere(String id, SagaStatus status) {
        SagaInstance s = store.find(id).orElseThrow();
        SagaInstance moved = new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(),
                s.dataType(), s.data(), status, s.steps(), s.failure(), s.compensationFailure(), s.createdAt(),
                scheduler.now(), s.version() + 1);
        store.update(moved, new SagaTransition(id, moved.version(), scheduler.now(), TransitionType.STEP_WAITING,
                "charge", 1, "another node"));
    }

    @Test
    void aStoreFailureWhileARecoveryChecksARunDrivenHereSkipsThatRunReportsItAndResumesTheOtherSagas() {
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
        Set<String> failing = ConcurrentHashMap.newKeySet();
        SagaOrchestrator nodeA = SagaOrchestrator.builder().store(storeFailingFindOf(failing)).bus(bus)
                .scheduler(scheduler).register(patientPaySaga()).register(shipSaga()).replyTopic("replies-a").build();
        CompletableFuture<SagaResult<Order>> moving =
                nodeA.start(patientPaySaga(), "moving", null, new Order("moving")).toCompletableFuture();
        CompletableFuture<SagaResult<Order>> finishing =
                nodeA.start(patientPaySaga(), "finishing", null, new Order("finishing")).toCompletableFuture();
        transport.drainAll();
        abandon("late"); // a node that died: its saga is to be resumed
        scheduler.advance(Duration.ofHours(2));
        writtenElsewhere("moving", SagaStatus.RUNNING); // checked in the recovery's loop over the query
        writtenElsewhere("finishing", SagaStatus.COMPLETED); // in no query: checked after the loop
        failing.addAll(Set.of("moving", "finishing"));

        SagaOrchestrator.RecoveryReport failed = nodeA.recover();

        assertEquals(List.of("late"), failed.resumed(), "the other sagas are still resumed");
        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        assertEquals(Set.of("moving", "finishing"), Set.copyOf(failed.unresolvable()), "the runs it could not check");
        assertFalse(moving.isDone(), "a run not checked stays driven here");
        assertFalse(finishing.isDone());

        failing.clear(); // the store is back: the next recovery checks both runs and drops them
        SagaOrchestrator.RecoveryReport next = nodeA.recover();
        assertInstanceOf(ConcurrentSagaUpdateException.class, assertThrows(CompletionException.class, moving::join).getCause());
        assertInstanceOf(ConcurrentSagaUpdateException.class, assertThrows(CompletionException.class, finishing::join).getCause());
        assertEquals(List.of("moving"), next.resumed(), "then treated as any saga not driven here");
        assertEquals(List.of(), next.unresolvable());
        nodeA.close();
    }

    @Test
    void anErrorFromTheStoreWhileARecoveryRereadsASagaItRegisteredStopsThatRunAsACrashWouldSoTheNextRecoveryResumesIt() {
        abandon("late");
        Set<String> crashFindOf = ConcurrentHashMap.newKeySet();
        SagaOrchestrator nodeB = SagaOrchestrator.builder().store(new ForwardingSagaStore(store) {
            @Override
            public java.util.Optional<SagaInstance> find(String sagaId) {
                if (crashFindOf.remove(sagaId)) {
                    throw new Crash(); // an Error from the store, while the recovery checks the run it just registered
                }
                return delegate.find(sagaId);
            }
        }).bus(bus).scheduler(scheduler).register(patientPaySaga()).register(shipSaga()).replyTopic("replies-b").build();
        crashFindOf.add("late");

        assertThrows(Crash.class, nodeB::recover);
        SagaOrchestrator.RecoveryReport next = nodeB.recover();

        assertEquals(List.of("late"), next.resumed(), "the run the Error stopped is not left registered and undriven");
        assertEquals(SagaStatus.COMPLETED, store.find("late").orElseThrow().status());
        nodeB.close();
    }
}
