package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A step undone by a command to its participant, completed by the participant's reply. */
class RemoteCompensationTest {
    record Booking(String passenger, String seatId) {
        Booking withSeat(String id) {
            return new Booking(passenger, id);
        }
    }

    record ReserveSeat(String passenger) {
    }

    record SeatReserved(String seatId) {
    }

    record ReleaseSeat(String seatId) {
    }

    record SeatReleased(String seatId, boolean released) {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("reserve-seat", 1, ReserveSeat.class)
                .register("seat-reserved", 1, SeatReserved.class)
                .register("release-seat", 1, ReleaseSeat.class)
                .register("seat-released", 1, SeatReleased.class)
                .build();
    }

    /** The airline: a participant on the bus that reserves and releases seats, idempotently by key. */
    static final class Airline {
        final Set<String> applied = new HashSet<>();
        final List<Message> releaseCommands = new ArrayList<>();
        final List<ReleaseSeat> releaseRequests = new ArrayList<>();
        int reservations;
        int releases;
        boolean refusesReleases;
        boolean ignoresReleases;

        Airline(EventBus bus) {
            this(bus, true);
        }

        /** {@code releasing} false: the release desk opens later ({@link #openReleaseDesk}). */
        Airline(EventBus bus, boolean releasing) {
            bus.subscribe("airline", "seat-commands", ReserveSeat.class, (command, ctx) -> {
                String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    // A release that came first leaves a tombstone: the late reservation is refused.
                    if (!applied.contains("release:" + key + "/compensation") && applied.add("reserve:" + key)) {
                        reservations++;
                    }
                    SagaMessages.reply(bus, ctx.message(), new SeatReserved("seat-" + key));
                }
            });
            if (releasing) {
                openReleaseDesk(bus);
            }
        }

        /** Handles the release commands, from the earliest one on. */
        void openReleaseDesk(EventBus bus) {
            bus.subscribe("airline", "seat-release-commands", ReleaseSeat.class, SubscriptionOptions.fromEarliest(), (command, ctx) -> {
                Message message = ctx.message();
                String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    releaseCommands.add(message);
                    releaseRequests.add(command);
                    if (ignoresReleases) {
                        return; // no reply: the step's timeout decides
                    }
                    if (!refusesReleases && applied.add("release:" + key) && applied.contains("reserve:"
                            + key.substring(0, key.length() - "/compensation".length()))) {
                        releases++;
                    }
                    SagaMessages.reply(bus, message, new SeatReleased(command.seatId(), !refusesReleases));
                }
            });
        }
    }

    static Airline airline(SagaTestEnvironment env) {
        return new Airline(env.bus());
    }

    static SagaDefinition<Booking> definition(Airline airline) {
        return definition(false);
    }

    static SagaDefinition<Booking> definition(boolean chargeDeclined) {
        return SagaDefinition.builder("booking-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b.withSeat(reply.seatId()))
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.seatId()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                    if (!reply.released()) {
                        throw new IllegalStateException("the airline refused to release " + reply.seatId());
                    }
                })
                .compensationRetry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .timeout(Duration.ofSeconds(30))
                .step("charge").action((b, ctx) -> {
                    if (chargeDeclined) {
                        throw new IllegalStateException("card declined");
                    }
                    return b;
                })
                .build();
    }

    private static final Booking BOOKING = new Booking("ann", null);

    /** A booking whose charge is declined, with the airline set up by {@code setup}. */
    private static SagaTestKit<Airline, Booking> declinedBooking(Consumer<Airline> setup) {
        return booking(setup).failStep("charge", FailureMode.always());
    }

    private static SagaTestKit<Airline, Booking> booking(Consumer<Airline> setup) {
        return SagaTestKit.given(env -> {
            Airline airline = airline(env);
            setup.accept(airline);
            return airline;
        }, RemoteCompensationTest::definition, BOOKING).types(types());
    }

    @Test
    void aFailedChargeReleasesTheSeatByACommandAndCompletesOnTheReply() {
        SagaRunReport<Airline, Booking> run = declinedBooking(airline -> { })
                .whenRun()
                .expectCompensated()
                .expectCompensations("reserve-seat");

        assertEquals(1, run.fixture().reservations);
        assertEquals(1, run.fixture().releases);
        Message command = run.fixture().releaseCommands.get(0);
        assertEquals(SagaMessages.COMPENSATION, command.header(SagaMessages.PHASE).orElseThrow());
        assertEquals("test-saga-1/reserve-seat/compensation", command.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow());
        assertEquals(List.of(new ReleaseSeat("seat-test-saga-1/reserve-seat")), run.fixture().releaseRequests);
        assertEquals(List.of(TransitionType.COMPENSATION_STARTED, TransitionType.COMPENSATION_SUCCEEDED),
                run.history().stream().filter(t -> "reserve-seat".equals(t.step()) && t.type().name().startsWith("COMPENSATION"))
                        .map(t -> t.type()).toList());
    }

    @Test
    void aRefusedReleaseIsAFailedAttemptRetriedPerThePolicyThenTheSagaNeedsAttention() {
        SagaRunReport<Airline, Booking> run = declinedBooking(airline -> airline.refusesReleases = true)
                .whenRun()
                .expectNeedsAttention();

        assertEquals(2, run.fixture().releaseCommands.size());
        assertEquals(List.of("1", "2"), run.fixture().releaseCommands.stream()
                .map(m -> m.header(SagaMessages.ATTEMPT).orElseThrow()).toList());
        assertEquals("reserve-seat", run.result().compensationFailure().step());
        assertTrue(run.result().compensationFailure().message().contains("refused to release"));
        assertEquals(StepStatus.COMPENSATION_FAILED, run.instance().orElseThrow().step("reserve-seat").orElseThrow().status());
    }

    @Test
    void anInjectedFailureOfARemoteCompensationHappensWhenItsReplyIsHandledAfterTheParticipantActed() {
        // As for a remote step: the invocation the kit fails is the handling of the reply, not the sending.
        SagaRunReport<Airline, Booking> run = declinedBooking(airline -> { })
                .failCompensation("reserve-seat", FailureMode.once())
                .whenRun()
                .expectCompensated()
                .expectCompensations("reserve-seat");

        assertEquals(2, run.fixture().releaseCommands.size(), "the retry sent the command again");
        assertEquals(1, run.fixture().releases, "the airline released at the first command and deduped the second");
    }

    @Test
    void noReplyWithinTheStepsTimeoutFailsTheAttempt() {
        SagaRunReport<Airline, Booking> run = declinedBooking(airline -> airline.ignoresReleases = true)
                .whenRun()
                .expectNeedsAttention();

        assertEquals(2, run.fixture().releaseCommands.size());
        assertEquals(SagaTimeoutException.class.getName(), run.result().compensationFailure().errorClass());
        assertEquals(0, run.environment().scheduler().pendingTasks());
    }

    @Test
    void crashExplorationHoldsForASagaWithARemoteCompensation() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline, RemoteCompensationTest::definition, BOOKING)
                .types(types())
                .invariant(RemoteCompensationTest::consistent)
                .explore();

        assertTrue(report.violations().isEmpty(), report.violations().toString());
        assertTrue(report.crashScenarios() >= 5, "crash scenarios: " + report.crashScenarios());
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().startsWith("compensation of reserve-seat")),
                report.scenarios().toString());
    }

    @Test
    void aCompensationReplyArrivingAfterARestartCompletesTheSagaOnTheOrchestratorThatReceivesIt() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Booking> definition = definition(true);
        try (transport; EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .types(types()).build()) {
            Airline airline = new Airline(bus, false);
            SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                    .register(definition).build();
            first.start(definition, "booking-1", null, BOOKING);
            transport.drainAll(); // the seat is reserved, the charge declined, the release command sent
            assertEquals(StepStatus.COMPENSATING, store.find("booking-1").orElseThrow().step("reserve-seat").orElseThrow().status());
            first.close(); // the process goes away before the airline answers

            SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                    .register(definition).build();
            airline.openReleaseDesk(bus);
            transport.drainAll();

            assertEquals(SagaStatus.COMPENSATED, store.find("booking-1").orElseThrow().status());
            assertEquals(1, airline.releases);
            assertEquals(1, airline.releaseCommands.size()); // the reply was taken as it came: nothing re-sent
            second.close();
        }
    }

    @Test
    void aGroupMembersRemoteCompensationWaitsBesideTheOtherMembersAndBeforeTheStepsBeforeTheGroup() {
        SagaRunReport<Airline, Booking> run = SagaTestKit.given(RemoteCompensationTest::airline,
                        airline -> SagaDefinition.builder("trip-booking-saga", Booking.class)
                                .step("quote").action((b, ctx) -> b).compensation((b, ctx) -> { })
                                .parallel(group -> {
                                    group.step("reserve-seat")
                                            .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                                            .onReply(SeatReserved.class, (b, reply) -> b.withSeat(reply.seatId()))
                                            .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.seatId()))
                                            .onCompensationReply(SeatReleased.class, (b, reply) -> { });
                                    group.step("meal").action((b, ctx) -> b).compensation((b, ctx) -> { });
                                })
                                .step("charge").action((b, ctx) -> b)
                                .build(), BOOKING)
                .types(types())
                .failStep("charge", FailureMode.always())
                .whenRun()
                .expectCompensated();

        // The meal is undone while the seat's release waits for its reply; the quote only after both.
        assertEquals(List.of("reserve-seat started", "meal started", "meal succeeded", "reserve-seat succeeded",
                        "quote started", "quote succeeded"),
                run.history().stream()
                        .filter(t -> t.type() == TransitionType.COMPENSATION_STARTED || t.type() == TransitionType.COMPENSATION_SUCCEEDED)
                        .map(t -> t.step() + (t.type() == TransitionType.COMPENSATION_STARTED ? " started" : " succeeded"))
                        .toList());
        assertEquals(1, run.fixture().releases);
    }

    private static void consistent(Airline airline, SagaRunReport<Airline, Booking> run) {
        assertTrue(airline.reservations <= 1 && airline.releases <= 1, "an effect was applied twice");
        if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(0, airline.releases);
        } else {
            assertEquals(airline.reservations, airline.releases, "reservations vs releases");
        }
    }
}
