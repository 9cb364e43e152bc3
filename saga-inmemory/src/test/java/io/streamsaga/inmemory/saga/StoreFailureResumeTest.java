package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.SagaQuery;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Recovery and idempotency": a store failure at a transition's write stops the saga's run as a crash
 * would, and the orchestrator that met it resumes the saga itself once the store answers again (tries after a backoff
 * of 1 s doubling to 1 min), without a recover() call or a recoverEvery sweep; it gives way to a saga driven here again,
 * finished, or driven by another live node, and close() cancels it. All on the virtual clock.
 */
class StoreFailureResumeTest {
    record Order(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    /**
     * Over a store: down (every call fails, as a database unreachable) from the write of a given transition until
     * {@link #up()}; or the write of a given transition fails a given number of times, the rest working. A node
     * registry, as its delegate is.
     */
    private static final class OutageStore extends ForwardingSagaStore implements NodeRegistry {
        private volatile boolean down;
        private volatile TransitionType downAt;
        private volatile String downAtStep;
        private final AtomicInteger writesToFail = new AtomicInteger();
        /** The next read throws a ThreadDeath (its thread stopped with Thread.stop). */
        private volatile boolean threadStoppedAtNextRead;
        /** The failing writes of {@link #failWritesOf} are stored before they fail ({@link #loseAnswersTo}). */
        private volatile boolean landsFirst;
        /** Run once by the next {@link #find}, before it reads (a close() racing the reader, say). */
        private volatile Runnable atNextFind;

        OutageStore(InMemorySagaStore delegate) {
            super(delegate);
        }

        /** Down from the write of {@code type} of {@code step} (that write failing) until {@link #up()}. */
        void downAt(TransitionType type, String step) {
            downAt = type;
            downAtStep = step;
        }

        /** The next {@code n} writes of {@code type} of {@code step} fail; the store answers otherwise. */
        void failWritesOf(TransitionType type, String step, int n) {
            downAt = type;
            downAtStep = step;
            writesToFail.set(n);
        }

        /**
         * The next {@code n} writes of {@code type} of {@code step} are stored, then fail (their answer lost, as a commit
         * of unknown outcome); the store answers otherwise.
         */
        void loseAnswersTo(TransitionType type, String step, int n) {
            failWritesOf(type, step, n);
            landsFirst = true;
        }

        void up() {
            down = false;
        }

        private boolean landsFirst(SagaTransition transition) {
            return landsFirst && writesToFail.get() > 0 && transition.type() == downAt
                    && Objects.equals(transition.step(), downAtStep);
        }

        private void answer() {
            if (threadStoppedAtNextRead) {
                threadStoppedAtNextRead = false;
                throw new ThreadDeath();
            }
            if (down) {
                throw new IllegalStateException("database unreachable");
            }
        }

        private void write(SagaTransition transition) {
            if (transition.type() == downAt && Objects.equals(transition.step(), downAtStep)) {
                if (writesToFail.get() > 0) {
                    if (writesToFail.decrementAndGet() == 0) {
                        downAt = null;
                    }
                    throw new IllegalStateException("connection reset");
                }
                downAt = null;
                down = true;
            }
            answer();
        }

        @Override
        public void insert(SagaInstance instance, SagaTransition transition) {
            write(transition, () -> super.insert(instance, transition));
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            write(transition, () -> super.update(updated, transition));
        }

        /** {@code stores} the transition, failing before it or, for {@link #loseAnswersTo}, after it. */
        private void write(SagaTransition transition, Runnable stores) {
            boolean landsFirst = landsFirst(transition);
            if (!landsFirst) {
                write(transition);
            }
            stores.run();
            if (landsFirst) {
                write(transition);
            }
        }

        @Override
        public Optional<SagaInstance> find(String sagaId) {
            Runnable hook = atNextFind;
            if (hook != null) {
                atNextFind = null;
                hook.run();
            }
            answer();
            return super.find(sagaId);
        }

        @Override
        public List<SagaInstance> findPage(SagaQuery query) {
            answer();
            return super.findPage(query);
        }

        @Override
        public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
            answer();
            return super.findActiveCreatedBefore(createdBefore);
        }

        @Override
        public void heartbeat(String nodeId, Instant at) {
            answer();
            ((NodeRegistry) delegate).heartbeat(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            answer();
            return ((NodeRegistry) delegate).heartbeats();
        }

        @Override
        public void remove(String nodeId) {
            answer();
            ((NodeRegistry) delegate).remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            answer();
            return ((NodeRegistry) delegate).remove(nodeId, at);
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore durable = new InMemorySagaStore();
    private final OutageStore store = new OutageStore(durable);
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final List<SagaOrchestrator> orchestrators = new ArrayList<>();
    private final AtomicInteger reserved = new AtomicInteger();
    private final AtomicInteger released = new AtomicInteger();
    private final AtomicInteger shipped = new AtomicInteger();

    @AfterEach
    void tearDown() {
        orchestrators.forEach(SagaOrchestrator::close);
        bus.close();
        transport.close();
    }

    /** reserve (local, compensated), then charge (remote, a 30-minute timeout, no retry): nobody answers. */
    private SagaDefinition<Order> paySaga(Duration chargeTimeout) {
        var charge = SagaDefinition.builder("pay-saga", Order.class)
                .step("reserve").action((order, ctx) -> {
                    reserved.incrementAndGet();
                    return order;
                }).compensation((order, ctx) -> released.incrementAndGet())
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order).retry(RetryPolicy.NONE);
        return (chargeTimeout == null ? charge : charge.timeout(chargeTimeout)).build();
    }

    /** reserve, then ship: both local. */
    private SagaDefinition<Order> shipSaga() {
        return SagaDefinition.builder("ship-saga", Order.class)
                .step("reserve").action((order, ctx) -> {
                    reserved.incrementAndGet();
                    return order;
                })
                .step("ship").action((order, ctx) -> {
                    shipped.incrementAndGet();
                    return order;
                })
                .build();
    }

    private SagaOrchestrator orchestrator(SagaOrchestrator.Builder builder) {
        SagaOrchestrator orchestrator = builder.build();
        orchestrators.add(orchestrator);
        return orchestrator;
    }

    @Test
    void aSagaWaitingOnARemoteStepWhoseWriteFailedIsResumedWhenTheStoreIsBackAndItsTimeoutThenCompensatesIt() {
        SagaDefinition<Order> definition = paySaga(Duration.ofMinutes(30));
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).bus(bus)
                .scheduler(scheduler).register(definition));
        store.downAt(TransitionType.STEP_WAITING, "charge");
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        scheduler.advance(Duration.ofSeconds(10)); // the database is still unreachable: the tries fail
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status());

        store.up();
        scheduler.advance(Duration.ofMinutes(32)); // resumed at the next try; its charge times out 30 minutes later

        assertEquals(SagaStatus.COMPENSATED, durable.find("s-1").orElseThrow().status());
        assertEquals(1, reserved.get());
        assertEquals(1, released.get());
    }

    @Test
    void aSagaWhoseLocalStepsWriteFailedIsResumedAndCompletesWithOneErrorLineForTheStreakOfFailures() throws Throwable {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.failWritesOf(TransitionType.STEP_SUCCEEDED, "reserve", 3); // the first run's, then two resumptions'

        String log = CapturedLog.ofThisThread(() -> {
            orchestrator.start(definition, "s-1", null, new Order("s-1"));
            scheduler.advance(Duration.ofMinutes(1));
        });

        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        assertEquals(4, reserved.get()); // its outcome not stored, the step runs again at each resumption
        assertEquals(1, shipped.get());
        assertEquals(1, log.lines().filter(line -> line.contains(" ERROR ")).count(), log);
        assertEquals(0, log.lines().filter(line -> line.contains(" WARN ")).count(), log);
        assertEquals(1, log.lines().filter(line -> line.contains(" INFO ")
                && line.contains("resumed here after its store failure (3 failure(s) in a row)")).count(), log);
    }

    @Test
    void theResumptionsLinesCarryTheSagasKeysWithLogContext() throws Throwable {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition).logContext(true));
        store.failWritesOf(TransitionType.STEP_SUCCEEDED, "reserve", 2); // the first run's, then the first try's

        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        String log = CapturedLog.ofThisThread(() -> scheduler.advance(Duration.ofMinutes(1))); // the tries, no drive

        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        String resumed = log.lines().filter(line -> line.contains("resumed here after its store failure")).findFirst()
                .orElseThrow(() -> new AssertionError(log));
        assertTrue(resumed.endsWith("mdc={streamsaga.saga=ship-saga, streamsaga.sagaId=s-1}"), resumed);
    }

    @Test
    void aSagaWhoseFailedWriteWasStoredAllTheSameIsResumedFromItWithoutOwnership() {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.loseAnswersTo(TransitionType.STEP_SUCCEEDED, "reserve", 1); // stored, its answer lost

        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status());
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        assertEquals(1, reserved.get()); // its success stored, the step does not run again
        assertEquals(1, shipped.get());
    }

    @Test
    void closeLeavesNoResumptionScheduledAndNothingResumesTheSagaAfterIt() {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.downAt(TransitionType.STEP_SUCCEEDED, "reserve");
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        assertEquals(1, scheduler.pendingTasks()); // the resumption's try
        scheduler.advance(Duration.ofSeconds(5)); // tries that fail queue the next
        assertEquals(1, scheduler.pendingTasks());

        orchestrator.close();

        assertEquals(0, scheduler.pendingTasks());
        store.up();
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status());
        assertEquals(0, shipped.get());
    }

    /** A ship saga s-1 whose run a store failure stopped after reserve, its resumption's try queued, the store up. */
    private SagaOrchestrator aShipSagaAwaitingItsResumption() {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.downAt(TransitionType.STEP_SUCCEEDED, "reserve");
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        store.up();
        return orchestrator;
    }

    @Test
    void aCloseRacingAResumptionsTryEndsItWithoutAnErrorLine() throws Throwable {
        SagaOrchestrator orchestrator = aShipSagaAwaitingItsResumption();
        // close() while the try reads the saga: after the try checked that the orchestrator is open, before it adopts
        store.atNextFind = orchestrator::close;

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(Duration.ofMinutes(1)));

        assertEquals(0, log.lines().filter(line -> line.contains(" ERROR ")).count(), log);
        // not resumed: named by close(), for recover()
        assertEquals(List.of("[main] WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga orchestrator closed"
                + " before it resumed 1 saga(s) a store failure stopped; recover() resumes them: [s-1]"),
                log.lines().filter(line -> line.contains(" WARN ")).toList(), log);
        assertEquals(0, scheduler.pendingTasks());
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status()); // for recover() to resume
        assertEquals(0, shipped.get());
    }

    @Test
    void aCloseWhileAResumptionsTryRunsOnAnotherThreadNamesTheSagaInItsWarning() throws Throwable {
        SagaOrchestrator orchestrator = aShipSagaAwaitingItsResumption();
        Thread closing = new Thread(orchestrator::close, "closing");
        // close() on another thread while the try reads the saga: it waits for the try (closeBy), which then ends
        store.atNextFind = () -> {
            closing.start();
            while (closing.getState() != Thread.State.TIMED_WAITING && closing.isAlive()) {
                Thread.onSpinWait();
            }
        };

        String log = CapturedLog.ofLogger("io.streamsaga.saga.internal.DefaultSagaOrchestrator", () -> {
            scheduler.advance(Duration.ofMinutes(1));
            closing.join();
        });

        assertEquals(0, log.lines().filter(line -> line.contains(" ERROR ")).count(), log);
        assertEquals(List.of("[closing] WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga orchestrator"
                + " closed before it resumed 1 saga(s) a store failure stopped; recover() resumes them: [s-1]"),
                log.lines().filter(line -> line.contains(" WARN ")).toList(), log);
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status());
        assertEquals(0, shipped.get());
    }

    @Test
    void aSagaWhoseResumptionASchedulerClosedFirstDroppedIsResumedByRecoverAndItsNextFailureIsLoggedAgain()
            throws Throwable {
        RejectingSchedulerTest.RejectingScheduler given = new RejectingSchedulerTest.RejectingScheduler();
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(given)
                .register(definition));
        store.downAt(TransitionType.STEP_SUCCEEDED, "reserve");
        orchestrator.start(definition, "s-1", null, new Order("s-1")); // its resumption's try queued
        given.close(); // the application's scheduler, closed before the orchestrator: the try is dropped
        given.rejecting = true;
        store.up();
        store.failWritesOf(TransitionType.STEP_SUCCEEDED, "ship", 1);

        String log = CapturedLog.ofThisThread(() -> assertEquals(List.of("s-1"), orchestrator.recover().resumed()));

        // the resumed run's failure: a streak of its own, whose try the closed scheduler refuses, said with the saga's id
        assertEquals(1, log.lines().filter(line -> line.contains("ERROR io.streamsaga.saga.internal.DefaultSagaOrchestrator"
                + " - saga s-1: the store failed; the saga stops here")).count(), log);
        assertTrue(log.contains("WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-1: not resumed here"
                + " after its store failure, the scheduler refused the task; recover() resumes it"), log);
        assertEquals(List.of("s-1"), orchestrator.recover().resumed());
        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        assertEquals(2, shipped.get()); // its outcome not stored the first time, the step runs again
    }

    @Test
    void closeNamesTheSagasWhoseResumptionHadNotRunYetInOneWarning() throws Throwable {
        RejectingSchedulerTest.RejectingScheduler given = new RejectingSchedulerTest.RejectingScheduler();
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(given)
                .register(definition));
        store.failWritesOf(TransitionType.STEP_SUCCEEDED, "reserve", 2);
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        orchestrator.start(definition, "s-2", null, new Order("s-2"));
        given.close(); // closed before the orchestrator: the tries are dropped, and nothing else would say so
        given.rejecting = true;

        String log = CapturedLog.ofThisThread(orchestrator::close);

        assertEquals(1, log.lines().filter(line -> line.contains(" WARN ")).count(), log);
        assertTrue(log.contains("WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga orchestrator closed"
                + " before it resumed 2 saga(s) a store failure stopped; recover() resumes them: ["), log);
        assertTrue(log.contains("s-1") && log.contains("s-2"), log);
    }

    /** reserve (its compensation fails until {@code undoWorks}, no retry), then ship, which fails: needs attention. */
    private SagaDefinition<Order> needsAttention(AtomicBoolean undoWorks) {
        return SagaDefinition.builder("undo-saga", Order.class)
                .step("reserve").action((order, ctx) -> {
                    reserved.incrementAndGet();
                    return order;
                }).compensation((order, ctx) -> {
                    if (!undoWorks.get()) {
                        throw new IllegalStateException("warehouse down");
                    }
                    released.incrementAndGet();
                }).compensationRetry(RetryPolicy.NONE)
                .step("ship").action((order, ctx) -> {
                    throw new IllegalStateException("no truck");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    @Test
    void anOperatorCallWhoseOwnWriteFailedIsNotMadeAgainByTheResumptionAndTheSagaStaysNeedingAttention() {
        AtomicBoolean undoWorks = new AtomicBoolean();
        SagaDefinition<Order> definition = needsAttention(undoWorks);
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, durable.find("s-1").orElseThrow().status());
        undoWorks.set(true);
        store.failWritesOf(TransitionType.SAGA_RETRIED, null, 1);

        CompletionException refused = assertThrows(CompletionException.class,
                () -> orchestrator.retryCompensation("s-1").toCompletableFuture().join());
        assertTrue(refused.getCause() instanceof SagaException failure && failure.isRetriable(), refused.toString());
        scheduler.advance(Duration.ofMinutes(5)); // the try reads it needing attention: nothing to resume

        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, durable.find("s-1").orElseThrow().status());
        assertEquals(0, released.get()); // the operator's call is the operator's to make again
        assertEquals(0, scheduler.pendingTasks());
        assertTrue(orchestrator.retryCompensation("s-1").toCompletableFuture().join().isCompensated());
        assertEquals(1, released.get());
    }

    @Test
    void anOperatorCallWhoseWriteWasStoredAllTheSameIsDrivenOnByTheResumption() {
        AtomicBoolean undoWorks = new AtomicBoolean();
        SagaDefinition<Order> definition = needsAttention(undoWorks);
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        undoWorks.set(true);
        store.loseAnswersTo(TransitionType.SAGA_RETRIED, null, 1); // stored, its answer lost

        assertThrows(CompletionException.class, () -> orchestrator.retryCompensation("s-1").toCompletableFuture().join());
        assertEquals(SagaStatus.COMPENSATING, durable.find("s-1").orElseThrow().status());
        scheduler.advance(Duration.ofMinutes(1)); // resumed as stored, as recover() would

        assertEquals(SagaStatus.COMPENSATED, durable.find("s-1").orElseThrow().status());
        assertEquals(1, released.get());
    }

    @Test
    void aSagaAnotherLiveNodeAdoptedMeanwhileIsLeftToItWhenTheStoreIsBack() {
        SagaDefinition<Order> definition = paySaga(null);
        SagaOrchestrator nodeA = orchestrator(SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).replyTopic("replies-a")
                .ownership("node-a", Duration.ofSeconds(1), Duration.ofSeconds(5)));
        SagaOrchestrator nodeB = orchestrator(SagaOrchestrator.builder().store(durable).bus(bus).scheduler(scheduler)
                .register(definition).replyTopic("replies-b")
                .ownership("node-b", Duration.ofSeconds(1), Duration.ofSeconds(5)));
        store.downAt(TransitionType.STEP_WAITING, "charge");
        nodeA.start(definition, "s-1", null, new Order("s-1"));
        scheduler.advance(Duration.ofSeconds(10)); // node A's store is down: its heartbeat too, its lease runs out

        assertEquals(List.of("s-1"), nodeB.recover().resumed());
        SagaInstance adopted = durable.find("s-1").orElseThrow();
        assertEquals("node-b", adopted.owner());
        store.up();
        scheduler.advance(Duration.ofMinutes(5)); // node A's next try finds node B live, driving it

        SagaInstance after = durable.find("s-1").orElseThrow();
        assertEquals("node-b", after.owner());
        assertEquals(adopted.version(), after.version());
        assertEquals(1, durable.history("s-1").stream().filter(t -> t.type() == TransitionType.SAGA_ADOPTED).count());
    }

    @Test
    void aSagaAnotherOrchestratorWroteSinceIsLeftToItWithoutOwnership() {
        SagaDefinition<Order> definition = paySaga(null);
        SagaOrchestrator first = orchestrator(SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).replyTopic("replies-a"));
        SagaOrchestrator second = orchestrator(SagaOrchestrator.builder().store(durable).bus(bus).scheduler(scheduler)
                .register(definition).replyTopic("replies-b"));
        List<Charge> charges = new CopyOnWriteArrayList<>();
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> charges.add(command));
        store.downAt(TransitionType.STEP_WAITING, "charge");
        first.start(definition, "s-1", null, new Order("s-1"));
        scheduler.advance(Duration.ofSeconds(10));

        assertEquals(List.of("s-1"), second.recover().resumed()); // it sends the charge and waits, a write of its own
        SagaInstance driven = durable.find("s-1").orElseThrow();
        store.up();
        scheduler.advance(Duration.ofMinutes(5)); // the first one's next try finds a version it did not write

        transport.drainAll();
        assertEquals(List.of(new Charge("s-1")), charges); // the second one's: the first one sent none again
        assertEquals(driven.version(), durable.find("s-1").orElseThrow().version());
        assertEquals(1, durable.history("s-1").stream()
                .filter(t -> t.type() == TransitionType.STEP_WAITING && "charge".equals(t.step())).count());
    }

    @Test
    void aSagaWhoseCompensationsWriteFailedIsResumedAndCompensatedOnce() {
        SagaDefinition<Order> definition = SagaDefinition.builder("refund-saga", Order.class)
                .step("reserve").action((order, ctx) -> {
                    reserved.incrementAndGet();
                    return order;
                }).compensation((order, ctx) -> released.incrementAndGet())
                .step("ship").action((order, ctx) -> {
                    throw new IllegalStateException("no truck");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.failWritesOf(TransitionType.COMPENSATION_SUCCEEDED, "reserve", 2); // the first run's, then a resumption's

        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(SagaStatus.COMPENSATED, durable.find("s-1").orElseThrow().status());
        assertEquals(1, reserved.get());
        assertEquals(3, released.get()); // its outcome not stored, the compensation runs again at each resumption
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void aSagaWhoseParallelMembersWriteFailedIsResumedAndCompletesOnce() {
        AtomicInteger hotels = new AtomicInteger();
        AtomicInteger flights = new AtomicInteger();
        SagaDefinition<Order> definition = SagaDefinition.builder("trip-saga", Order.class)
                .parallel(group -> {
                    group.step("hotel").action((order, ctx) -> {
                        hotels.incrementAndGet();
                        return order;
                    });
                    group.step("flight").action((order, ctx) -> {
                        flights.incrementAndGet();
                        return order;
                    });
                })
                .step("ship").action((order, ctx) -> {
                    shipped.incrementAndGet();
                    return order;
                })
                .build();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition));
        store.failWritesOf(TransitionType.STEP_SUCCEEDED, "flight", 1);

        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        assertEquals(2, flights.get()); // its outcome not stored, the member runs again at the resumption
        assertTrue(hotels.get() >= 1 && hotels.get() <= 2, "hotel ran " + hotels.get() + " times");
        assertEquals(1, shipped.get());
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void aSagaARecoverySweepOfTheSameOrchestratorResumedFirstIsDrivenOnce() {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .recoverEvery(Duration.ofMillis(500), Duration.ZERO).register(definition));
        store.downAt(TransitionType.STEP_SUCCEEDED, "reserve");
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        store.up();

        scheduler.advance(Duration.ofMinutes(5)); // the sweep at 0.5 s resumes it, before the resumption's try

        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
        assertEquals(2, reserved.get());
        assertEquals(1, shipped.get());
        assertEquals(1, durable.history("s-1").stream().filter(t -> t.type() == TransitionType.SAGA_COMPLETED).count());
    }

    @Test
    void aResumptionWhoseThreadIsStoppedSaysSoAtWarnAndTriesNoMore() throws Throwable {
        SagaDefinition<Order> definition = shipSaga();
        SagaOrchestrator orchestrator = orchestrator(SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition));
        store.downAt(TransitionType.STEP_SUCCEEDED, "reserve");
        orchestrator.start(definition, "s-1", null, new Order("s-1"));
        store.up();
        store.threadStoppedAtNextRead = true;

        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class,
                () -> scheduler.advance(Duration.ofSeconds(5)), "thrown on, as ThreadDeath's Javadoc asks"));

        assertTrue(log.contains("WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-1: its resumption"
                + " after a store failure stops for good, its thread stopped (java.lang.ThreadDeath)"), log);
        assertEquals(0, scheduler.pendingTasks());
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(SagaStatus.RUNNING, durable.find("s-1").orElseThrow().status());
        assertEquals(List.of("s-1"), orchestrator.recover().resumed()); // recover() resumes it
        assertEquals(SagaStatus.COMPLETED, durable.find("s-1").orElseThrow().status());
    }
}
