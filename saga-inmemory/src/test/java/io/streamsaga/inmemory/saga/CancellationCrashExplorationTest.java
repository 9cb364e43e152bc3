package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.OrderSagaFixture.OrderData;
import io.streamsaga.inmemory.saga.OrderSagaFixture.Services;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A test can cancel a saga once started ({@code whenStarted().cancel()}), so the crash explorer explores that path
 * too: the cancellation, and a crash right after and right before each of its writes, each recovered on a fresh
 * orchestrator (a crash during {@code cancel()} used to close the run and propagate, where one during the start is
 * recovered, and the explorer never cancelled). It also cancels right after each step's success is stored, before
 * the pivot (it used to cancel only right after the start, so a saga of local steps, which finishes while it
 * starts, was never explored cancelled).
 */
class CancellationCrashExplorationTest {
    record Trip(String id) {
    }

    record Book(String id) {
    }

    record Booked(String id) {
    }

    record CancelBooking(String id) {
    }

    record BookingCancelled(String id) {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("book", 1, Book.class).register("booked", 1, Booked.class)
                .register("cancel-booking", 1, CancelBooking.class).register("booking-cancelled", 1, BookingCancelled.class)
                .build();
    }

    /**
     * The agency's seat holds (local) and the airline (a participant that books at once, but answers 10 s later, and
     * cancels at once), each effect applied once per idempotency key. A cancellation that comes first leaves a
     * tombstone: the booking is then refused.
     */
    static final class Agency {
        private final Set<String> keys = new HashSet<>();
        int holds;
        int releases;
        int bookings;
        int cancellations;

        Agency(SagaTestEnvironment env) {
            env.bus().subscribe("airline", "book-commands", Book.class, (command, ctx) -> {
                Message message = ctx.message();
                String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    if (!keys.contains("cancel:" + key + "/compensation") && keys.add("book:" + key)) {
                        bookings++;
                    }
                }
                env.scheduler().schedule(Duration.ofSeconds(10),
                        () -> SagaMessages.reply(env.bus(), message, new Booked(command.id())));
            });
            env.bus().subscribe("airline", "cancel-commands", CancelBooking.class, (command, ctx) -> {
                String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    if (keys.add("cancel:" + key) && keys.contains("book:"
                            + key.substring(0, key.length() - "/compensation".length()))) {
                        cancellations++;
                    }
                }
                SagaMessages.reply(env.bus(), ctx.message(), new BookingCancelled(command.id()));
            });
        }

        synchronized String hold(String key) {
            if (keys.add("hold:" + key)) {
                holds++;
            }
            return key;
        }

        synchronized void release(String key) {
            if (keys.contains("hold:" + key) && keys.add("release:" + key)) {
                releases++;
            }
        }
    }

    static SagaDefinition<Trip> definition(Agency agency) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("hold-seat").action((trip, ctx) -> {
                    agency.hold(ctx.idempotencyKey());
                    return trip;
                })
                .compensation((trip, ctx) -> agency.release(ctx.idempotencyKey()))
                .step("book-flight").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                .onReply(Booked.class, (trip, reply) -> trip)
                .compensationCommand("cancel-commands", (trip, ctx) -> new CancelBooking(trip.id()))
                .onCompensationReply(BookingCancelled.class, (trip, reply) -> { })
                .timeout(Duration.ofSeconds(30)).retry(RetryPolicy.NONE)
                .step("confirm").action((trip, ctx) -> trip)
                .build();
    }

    private static void consistent(Agency agency, SagaRunReport<Agency, Trip> run) {
        assertTrue(agency.holds <= 1 && agency.releases <= 1 && agency.bookings <= 1 && agency.cancellations <= 1,
                "an effect was applied twice");
        if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(List.of(1, 1, 0, 0), List.of(agency.holds, agency.bookings, agency.releases, agency.cancellations));
        } else {
            assertEquals(agency.holds, agency.releases, "holds vs releases");
            assertEquals(agency.bookings, agency.cancellations, "bookings vs cancellations");
        }
    }

    @Test
    void explorationCancelsTheSagaOnceStartedAndCrashesRightAfterAndRightBeforeEachWriteOfTheCancellation() {
        ExplorationReport report = SagaCrashExplorer.forSaga(Agency::new, CancellationCrashExplorationTest::definition,
                        new Trip("t-1"))
                .types(types())
                .invariant(CancellationCrashExplorationTest::consistent)
                .explore();

        List<ExplorationReport.Scenario> cancelled = report.scenarios().stream()
                .filter(s -> s.name().contains("cancelled after it started")).toList();
        List<String> names = cancelled.stream().map(ExplorationReport.Scenario::name).toList();
        assertTrue(names.contains("cancelled after it started"), "scenarios: " + names);
        assertTrue(cancelled.stream().filter(s -> s.name().startsWith("crash after write") && s.crashedAndRecovered()).count() >= 2,
                "scenarios: " + names);
        assertTrue(cancelled.stream().filter(s -> s.name().startsWith("crash before write") && s.crashedAndRecovered()).count() >= 2,
                "scenarios: " + names);
        assertEquals(1, cancelled.stream().filter(s -> s.name().endsWith("(the cancel is lost)")
                && s.finalStatus() == SagaStatus.COMPLETED).count(), "scenarios: " + names);
        assertTrue(cancelled.stream().filter(s -> !s.name().endsWith("(the cancel is lost)"))
                .allMatch(s -> s.finalStatus() == SagaStatus.COMPENSATED), "scenarios: " + cancelled);
    }

    @Test
    void explorationCancelsTheSagaRightAfterEachStepSucceededAndCrashesRightAfterAndRightBeforeEachWriteOfTheCancellation() {
        ExplorationReport report = SagaCrashExplorer.forSaga(env -> new Services(), OrderSagaFixture::definition,
                        OrderData.of("erin", 7, "ink"))
                .invariant(OrderSagaFixture::consistent)
                .explore();

        for (String step : List.of("create-order", "reserve-inventory", "process-payment")) {
            String cancelled = "cancelled after " + step + " succeeded";
            List<ExplorationReport.Scenario> scenarios = report.scenarios().stream()
                    .filter(s -> s.name().equals(cancelled) || s.name().contains("while " + cancelled)).toList();
            List<String> names = scenarios.stream().map(ExplorationReport.Scenario::name).toList();
            assertTrue(names.contains(cancelled), "scenarios: " + report.scenarios());
            assertTrue(scenarios.stream().filter(s -> s.name().startsWith("crash after write") && s.crashedAndRecovered())
                    .count() >= 2, "scenarios: " + names);
            assertTrue(scenarios.stream().filter(s -> s.name().startsWith("crash before write") && s.crashedAndRecovered())
                    .count() >= 2, "scenarios: " + names);
            assertEquals(1, scenarios.stream().filter(s -> s.name().endsWith("(the cancel is lost)")
                    && s.finalStatus() == SagaStatus.COMPLETED).count(), "scenarios: " + names);
            assertTrue(scenarios.stream().filter(s -> !s.name().endsWith("(the cancel is lost)"))
                    .allMatch(s -> s.finalStatus() == SagaStatus.COMPENSATED), "scenarios: " + scenarios);
        }
        // After the last step the saga completes in the same drive: no cancel can come in there.
        assertTrue(report.scenarios().stream().noneMatch(s -> s.name().contains("after schedule-shipping succeeded")),
                report.scenarios().toString());
    }

    @Test
    void theCancelPointsListenerLeavesTheOtherScenariosOnTheStraightPathOfAnOrchestratorWithoutListeners() {
        SagaDefinition<Trip> local = SagaDefinition.builder("local", Trip.class)
                .step("a").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                .step("b").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                .step("c").action((trip, ctx) -> trip)
                .build();
        int straightWrites = writesOfAHappyRun(local, false);
        assertTrue(straightWrites < writesOfAHappyRun(local, true), "a listener adds writes: the pin would be void");

        ExplorationReport report = SagaCrashExplorer.forSaga(local, new Trip("t-3")).explore();

        // One crash point after each write of the production (straight) path, no more: its writes, not a listener's.
        assertEquals(straightWrites, report.scenarios().stream()
                .filter(s -> s.name().startsWith("crash after write") && s.name().endsWith("of the happy path")).count(),
                report.scenarios().toString());
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().equals("cancelled after b succeeded")),
                report.scenarios().toString());
    }

    private static int writesOfAHappyRun(SagaDefinition<Trip> definition, boolean withListener) {
        CrashingSagaStore store = new CrashingSagaStore(new InMemorySagaStore(), 0);
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler scheduler = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport).scheduler(scheduler).build()) {
            SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                    .register(definition);
            if (withListener) {
                builder.listener(new SagaListener() { });
            }
            try (SagaOrchestrator orchestrator = builder.build()) {
                orchestrator.start(definition, "t", null, new Trip("t-3"));
                assertEquals(SagaStatus.COMPLETED, store.find("t").orElseThrow().status());
            }
        } finally {
            transport.close();
        }
        return store.writes();
    }

    @Test
    void explorationOfASagaThatFinishesWhileItStartsCancelsItOnlyAfterAStepSucceededBeforeItsPivot() {
        ExplorationReport report = SagaCrashExplorer.forSaga(SagaDefinition.builder("local", Trip.class)
                        .step("a").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                        .pivot("p").action((trip, ctx) -> trip)
                        .retriable("r").action((trip, ctx) -> trip)
                        .build(), new Trip("t-2"))
                .explore();

        List<String> names = report.scenarios().stream().map(ExplorationReport.Scenario::name).toList();
        assertTrue(names.stream().noneMatch(n -> n.contains("cancelled after it started")), names.toString());
        assertTrue(names.contains("cancelled after a succeeded"), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("cancelled after p succeeded")), "past the pivot: " + names);
    }

    /**
     * Two parallel members whose work runs on the environment's executor once a timer fires; hold's timer falls
     * before or after quote's by the parity of the fixture (one per run), so that their successes are stored in
     * either order from one run to the next, as when their work ends on the executor threads in any order.
     */
    static final class Pair {
        final Set<String> live = new HashSet<>();
        final List<String> undone = new java.util.ArrayList<>();
        final Set<String> tombstones = new HashSet<>();
        final SagaTestEnvironment env;
        final boolean holdFirst;

        Pair(SagaTestEnvironment env, boolean holdFirst) {
            this.env = env;
            this.holdFirst = holdFirst;
        }

        /** Refused once undone (a tombstone): the work of an action may end after its compensation. */
        synchronized Trip apply(Trip trip, String key) {
            if (!tombstones.contains(key)) {
                live.add(key);
            }
            return trip;
        }

        synchronized void undo(String key) {
            tombstones.add(key);
            if (live.remove(key)) {
                undone.add(key);
            }
        }

        <T> CompletableFuture<T> after(Duration delay, Supplier<T> work) {
            CompletableFuture<T> done = new CompletableFuture<>();
            env.scheduler().schedule(delay, () -> CompletableFuture.supplyAsync(work, env.executor())
                    .whenComplete((value, error) -> {
                        if (error == null) {
                            done.complete(value);
                        } else {
                            done.completeExceptionally(error);
                        }
                    }));
            return done;
        }
    }

    static SagaDefinition<Trip> pair(Pair p) {
        SagaDefinition.Builder<Trip> b = SagaDefinition.builder("pair", Trip.class);
        b.parallel(g -> {
            g.step("quote").asyncAction((trip, ctx) -> p.after(Duration.ofSeconds(1),
                            () -> p.apply(trip, ctx.idempotencyKey())))
                    .asyncCompensation((trip, ctx) -> p.after(Duration.ZERO, () -> {
                        p.undo(ctx.idempotencyKey());
                        return null;
                    }));
            g.step("hold").asyncAction((trip, ctx) -> p.after(Duration.ofMillis(p.holdFirst ? 500 : 1500),
                            () -> p.apply(trip, ctx.idempotencyKey())))
                    .asyncCompensation((trip, ctx) -> p.after(Duration.ZERO, () -> {
                        p.undo(ctx.idempotencyKey());
                        return null;
                    }));
            g.merge((current, result) -> current);
        });
        return b.step("check").action((trip, ctx) -> p.apply(trip, ctx.idempotencyKey()))
                .compensation((trip, ctx) -> p.undo(ctx.idempotencyKey()))
                .pivot("charge").action((trip, ctx) -> p.apply(trip, ctx.idempotencyKey()))
                .build();
    }

    @Test
    void aCancelThatComesAtAnotherWriteThanInTheRunItsCrashPointsWereTakenFromIsExpectedToEndAsWhatItMet() {
        AtomicInteger runs = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer.forSaga(env -> new Pair(env, runs.incrementAndGet() % 2 == 0),
                        CancellationCrashExplorationTest::pair, new Trip("t-4"))
                .invariant((p, run) -> {
                    assertEquals(new HashSet<>(p.undone).size(), p.undone.size(), "undone twice: " + p.undone);
                    if (run.status() == SagaStatus.COMPLETED) {
                        assertEquals(List.of(), p.undone, "completed but undone");
                    } else {
                        assertTrue(p.live.stream().allMatch(k -> k.endsWith("/charge")), "not undone: " + p.live);
                    }
                })
                .explore();

        // Each probe's member succeeded second (write 5), and the cancel after it is lost by a crash before write 6;
        // the next run's member succeeds first (write 4): its cancel is stored as write 5, and the saga compensates.
        for (String member : List.of("quote", "hold")) {
            String lostThere = "crash before write 6 while cancelled after " + member + " succeeded (the cancel is lost)"
                    + " (this run's cancel came after write 4, not 5, and was stored, its runs not deterministic)";
            assertEquals(List.of(SagaStatus.COMPENSATED), report.scenarios().stream()
                    .filter(s -> s.name().equals(lostThere)).map(ExplorationReport.Scenario::finalStatus).toList(),
                    "scenarios: " + report.scenarios());
        }
    }
}
