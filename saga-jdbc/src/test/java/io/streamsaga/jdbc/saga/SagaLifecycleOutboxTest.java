package io.streamsaga.jdbc.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TwoRefusedCancellations;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Lifecycle events written to the outbox in the transition's transaction: a crash can neither lose one
 * nor send one for a transition that was not stored. Subclasses pick the engine (and group commit).
 */
abstract class SagaLifecycleOutboxTest {
    record Order(String orderId, boolean fail) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    abstract JdbcSagaStore.Builder configure(JdbcSagaStore.Builder builder);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private EventBus bus;
    private JdbcSagaStore store;
    private final List<SagaLifecycleEvent> received = new CopyOnWriteArrayList<>();
    private final List<String> ids = new CopyOnWriteArrayList<>();

    private final SagaDefinition<Order> saga = SagaDefinition.builder("order", Order.class).dataType("order-data")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
            .step("charge").action((d, ctx) -> {
                if (d.fail()) {
                    throw new IllegalStateException("card declined");
                }
                return d;
            }).retry(RetryPolicy.NONE).compensation((d, ctx) -> { })
            .build();

    /** A saga that needs attention: its compensation of reserve keeps failing. */
    private final SagaDefinition<Order> stuck = SagaDefinition.builder("stuck-order", Order.class).dataType("order-data")
            .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                throw new IllegalStateException("release refused");
            }).compensationRetry(RetryPolicy.NONE)
            .step("charge").action((d, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    @BeforeEach
    void setUp() {
        TestDatabase database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        store = configure(JdbcSagaStore.builder(database.dataSource())).lifecycleEventsToOutbox("saga-events").build();
        bus = EventBus.builder(transport).scheduler(scheduler)
                .types(TypeRegistry.builder().register(SagaLifecycleEvent.TYPE, 1, SagaLifecycleEvent.class).build()).build();
        bus.subscribe("ops", "saga-events", SagaLifecycleEvent.class, (event, ctx) -> {
            received.add(event);
            ids.add(ctx.message().id());
        });
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private void relay() {
        OutboxRelay.builder(db.database().dataSource()).eventBus(bus).executor(Runnable::run).build().relayPending();
        transport.drainAll();
    }

    @Test
    void compensatedSagasLifecycleEventsAreRelayedFromTheOutbox() {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga).build()) {
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.start(saga, "s-1", "o-1", new Order("o-1", true))
                    .toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(List.of("started", "step-completed", "compensating", "compensated"),
                received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals("reserve", received.get(1).step());
        assertEquals(SagaStatus.COMPENSATED, received.get(3).status());
        assertEquals("charge: java.lang.IllegalStateException: card declined", received.get(3).error());
        assertEquals("s-1/2026-01-01T00:00:00Z/1", ids.get(0), "<saga id>/<created at>/<version>");
    }

    @Test
    void aLifecycleEventIdTheOutboxHoldsLeavesTheSagaNeedingAttentionWithoutThatEventNotRunningForRecover() {
        // Write 3 (reserve succeeded) carries the event of id <saga>/<start>/3, which the outbox holds (a restore of
        // it): refused, and the needs-attention write that follows, of the same version, carried its 'failed' event
        // under that id, refused again: the saga stayed running, for every recover() to meet the row again.
        String id = "s-5/2026-01-01T00:00:00Z/3";
        io.streamsaga.message.Message taken = io.streamsaga.message.Message.builder("saga-events").id(id).key("s-5")
                .type("restored").payload(new byte[]{'{', '}'}).build();
        new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource()).run(c -> io.streamsaga.jdbc.outbox.JdbcOutbox
                .builder(db.database().dataSource()).codec(bus.codec()).build().append(c, taken));
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga).build()) {
            var result = orchestrator.start(saga, "s-5", "o-5", new Order("o-5", false)).toCompletableFuture().join();
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
            assertEquals(io.streamsaga.saga.spi.SagaWriteRefusedException.class.getName(), result.failure().errorClass());
            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-5").orElseThrow().status());
        }
        try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga).build()) {
            assertEquals(List.of(), second.recover().resumed(), "left alone, for an operator");
        }
        relay();
        assertEquals(List.of("s-5/2026-01-01T00:00:00Z/1"), ids.stream().filter(i -> !i.equals(id)).toList(),
                "the 'started' event; no 'failed' event under the id the outbox holds");
    }

    @Test
    void aCrashNeitherLosesNorInventsALifecycleEvent() {
        CrashingSagaStore dying = new CrashingSagaStore(store, 4); // dies after storing STEP_STARTED(charge)
        try (SagaOrchestrator first = SagaOrchestrator.builder().store(dying).scheduler(scheduler).register(saga).build()) {
            assertThrows(SimulatedCrash.class, () -> first.start(saga, "s-2", "o-2", new Order("o-2", false)));
        }
        relay();
        assertEquals(List.of("started", "step-completed"), received.stream().map(SagaLifecycleEvent::event).toList(),
                "exactly the events of the stored transitions");

        try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga).build()) {
            second.recover();
            assertEquals(SagaOutcome.COMPLETED, second.result("s-2").toCompletableFuture().join().outcome());
        }
        relay();
        assertEquals(List.of("started", "step-completed", "step-completed", "completed"),
                received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event once");
    }

    @Test
    void aSagaStartedAtAnInstantFinerThanTheDatabaseKeepsHasTheSameStartInItsIdsAfterARecovery() {
        // The ids hold the saga's start to the microsecond, which the id took by truncating the instant the saga
        // started at, while H2 and PostgreSQL round it when they store it: the events written before a recovery said
        // .123456, those written after it, from the start read back, .123457. A saga's start is now taken to the
        // microsecond when it starts, so every id of the saga (a command sent again after a recovery too) holds one.
        VirtualScheduler fine = new VirtualScheduler(java.time.Instant.parse("2026-01-01T00:00:00.123456789Z"));
        CrashingSagaStore dying = new CrashingSagaStore(store, 4); // dies after storing STEP_STARTED(charge)
        try (SagaOrchestrator first = SagaOrchestrator.builder().store(dying).scheduler(fine).register(saga).build()) {
            assertThrows(SimulatedCrash.class, () -> first.start(saga, "s-4", "o-4", new Order("o-4", false)));
        }
        try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(fine).register(saga).build()) {
            second.recover();
            assertEquals(SagaOutcome.COMPLETED, second.result("s-4").toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(4, ids.size(), "started, step-completed, step-completed, completed: " + ids);
        assertTrue(ids.stream().allMatch(id -> id.startsWith("s-4/2026-01-01T00:00:00.123456Z/")), ids.toString());
    }

    @Test
    void aSagaIdUsedAgainAfterItsSagaWasPurgedGetsLifecycleEventIdsOfItsOwn() {
        // The ids were <saga id>/<version>: a saga started under the id of one purged by retention gave its events
        // the ids of that saga's, which the outbox (message ids unique) refused while it kept the first saga's rows,
        // so the second saga could not even start, and which an idempotent consumer would take for those it had seen.
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga)
                .retention(Duration.ZERO).build()) {
            assertEquals(SagaOutcome.COMPLETED, orchestrator.start(saga, "s-3", "o-3", new Order("o-3", false))
                    .toCompletableFuture().join().outcome());
            relay();
            scheduler.advance(Duration.ofSeconds(1));
            assertEquals(1, orchestrator.purgeFinished());

            assertEquals(SagaOutcome.COMPENSATED, orchestrator.start(saga, "s-3", "o-3", new Order("o-3", true))
                    .toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(List.of("started", "step-completed", "step-completed", "completed",
                "started", "step-completed", "compensating", "compensated"),
                received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    @Test
    void aSagaResolvedByTheOperatorEndsWithAResolvedEventRelayedFromTheOutbox() {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(stuck).build()) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(stuck, "s-9", "o-9", new Order("o-9", true))
                    .toCompletableFuture().join().outcome());
            orchestrator.markResolved("s-9");
        }
        relay();

        assertEquals(List.of("started", "step-completed", "compensating", "failed", "resolved"),
                received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.RESOLVED, received.get(4).status());
        assertEquals("reserve: java.lang.IllegalStateException: release refused", received.get(4).error());
    }

    @Test
    void anOperatorsRetryAndSkipOfASagaThatNeedsAttentionEachRelayACompensatingEventUnderAnIdOfItsOwn() {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(stuck).build()) {
            orchestrator.start(stuck, "s-10", "o-10", new Order("o-10", true));
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.retryCompensation("s-10")
                    .toCompletableFuture().join().outcome()); // refused again
            assertEquals(SagaOutcome.COMPENSATED, orchestrator.skipCompensation("s-10", "reserve")
                    .toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(List.of("started", "step-completed", "compensating", "failed", "compensating", "failed",
                "compensating", "compensated"), received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.COMPENSATING, received.get(4).status());
        assertEquals("charge: java.lang.IllegalStateException: card declined", received.get(4).error());
        assertEquals(SagaStatus.COMPENSATING, received.get(6).status());
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    @Test
    void anOperatorsSkipThatLeavesAnotherCompensationFailedRelaysAFailedEventNamingThatOne() {
        SagaDefinition<Order> trip = TwoRefusedCancellations.trip(Order.class, "order-data");
        String other;
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(trip).build()) {
            String skipped = orchestrator.start(trip, "s-12", "o-12", new Order("o-12", true)).toCompletableFuture()
                    .join().compensationFailure().step();
            other = skipped.equals("hotel") ? "flight" : "hotel";
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.skipCompensation("s-12", skipped)
                    .toCompletableFuture().join().outcome());
        }
        relay();

        List<String> events = received.stream().map(SagaLifecycleEvent::event).toList();
        assertEquals(List.of("compensating", "failed", "failed"), events.subList(events.size() - 3, events.size()),
                events.toString());
        SagaLifecycleEvent failedAgain = received.get(received.size() - 1);
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, failedAgain.status());
        assertTrue(failedAgain.error().startsWith(other + ": "), failedAgain.error());
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }

    @Test
    void anOperatorsRetryOfAStuckRetriableStepRelaysARetriedEventWithStatusRunning() {
        java.util.concurrent.atomic.AtomicBoolean carrierDown = new java.util.concurrent.atomic.AtomicBoolean(true);
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).dataType("order-data")
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    if (carrierDown.get()) {
                        throw new IllegalStateException("carrier down");
                    }
                    return d;
                }).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(shipping).build()) {
            assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, orchestrator.start(shipping, "s-11", "o-11",
                    new Order("o-11", false)).toCompletableFuture().join().outcome());
            carrierDown.set(false);
            assertEquals(SagaOutcome.COMPLETED, orchestrator.retryCompensation("s-11").toCompletableFuture().join().outcome());
        }
        relay();

        assertEquals(List.of("started", "step-completed", "failed", "retried", "step-completed", "completed"),
                received.stream().map(SagaLifecycleEvent::event).toList());
        assertEquals(SagaStatus.RUNNING, received.get(3).status());
        // what it retries after, the 'failed' event's error, as 'resolved' names the failure resolved
        assertEquals("ship: java.lang.IllegalStateException: carrier down", received.get(3).error());
        assertEquals(received.get(2).error(), received.get(3).error());
        assertEquals(ids.size(), ids.stream().distinct().count(), "each event an id of its own: " + ids);
    }
    /**
     * The store's own mapping of transitions to lifecycle events (lifecycleEventsToOutbox) and the orchestrator's
     * (publishLifecycleEvents) tell the same course, event for event (name, step, status, error), for every event an
     * operator call emits as well: a needing-attention saga retried, skipped, resolved, and a stuck step retried.
     */
    @Test
    void theOutboxRelaysTheEventsTheOrchestratorPublishesForTheSameCourseOfOperatorCalls() {
        java.util.concurrent.atomic.AtomicBoolean carrierDown = new java.util.concurrent.atomic.AtomicBoolean(true);
        SagaDefinition<Order> shipping = SagaDefinition.builder("shipping", Order.class).dataType("order-data")
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    if (carrierDown.get()) {
                        throw new IllegalStateException("carrier down");
                    }
                    return d;
                }).retry(RetryPolicy.NONE)
                .build();
        java.util.function.Consumer<SagaOrchestrator> course = orchestrator -> {
            carrierDown.set(true);
            orchestrator.start(saga, "s-20", "o-20", new Order("o-20", true));
            orchestrator.start(stuck, "s-21", "o-21", new Order("o-21", true));
            orchestrator.retryCompensation("s-21"); // fails again
            orchestrator.skipCompensation("s-21", "reserve");
            orchestrator.start(stuck, "s-22", "o-22", new Order("o-22", true));
            orchestrator.markResolved("s-22");
            orchestrator.start(shipping, "s-23", "o-23", new Order("o-23", false));
            carrierDown.set(false);
            orchestrator.retryCompensation("s-23");
        };
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(saga).register(stuck).register(shipping).build()) {
            course.accept(orchestrator);
        }
        relay();
        List<String> relayed = received.stream().map(SagaLifecycleOutboxTest::describe).toList();
        received.clear();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(new io.streamsaga.inmemory.saga.InMemorySagaStore()).bus(bus).scheduler(scheduler)
                .register(saga).register(stuck).register(shipping).publishLifecycleEvents("saga-events").build()) {
            course.accept(orchestrator);
        }
        transport.drainAll();
        List<String> published = received.stream().map(SagaLifecycleOutboxTest::describe).toList();

        assertEquals(published, relayed);
        assertTrue(relayed.stream().anyMatch(e -> e.startsWith("s-23 retried")), relayed.toString());
    }

    private static String describe(SagaLifecycleEvent e) {
        return e.sagaId() + " " + e.event() + " " + e.step() + " " + e.status() + " " + e.error();
    }
}
