package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.Airline;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.Booking;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.ReleaseSeat;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.ReserveSeat;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.SeatReleased;
import io.streamsaga.inmemory.saga.RemoteCompensationTest.SeatReserved;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport.Kind;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The crash explorer's scenarios of a remote compensation whose command does not reach its participant once
 * ({@link Kind#LOST_COMPENSATION_COMMAND}): the compensation times out and is retried per its policy, or the saga needs
 * attention; the lost command turns up late, so the participant must undo once under one idempotency key.
 */
class LostCompensationCommandExplorationTest {
    private static final Booking BOOKING = new Booking("ann", null);
    private static final String SCENARIO = "compensation command to reserve-seat lost once, then redelivered (charge fails)";

    /** The release commands the run lost (the kit sends them to a topic no one reads, then delivers them late). */
    private static List<Message> lostReleases(SagaTestEnvironment env) {
        return env.transport().messages("__saga-test-kit-lost-commands").stream()
                .filter(m -> SagaMessages.COMPENSATION.equals(m.header(SagaMessages.PHASE).orElse(null))).toList();
    }

    /** The booking saga, its seat released with {@code releaseRetry}; each wait bounded by {@code timeout}, none if null. */
    static SagaDefinition<Booking> booking(RetryPolicy releaseRetry, Duration timeout) {
        SagaDefinition.StepBuilder<Booking> reserve = SagaDefinition.builder("booking-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b.withSeat(reply.seatId()))
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.seatId()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                })
                .compensationRetry(releaseRetry);
        if (timeout != null) {
            reserve.timeout(timeout);
        }
        return reserve.step("charge").action((b, ctx) -> b).build();
    }

    private static SagaTransition firstOf(SagaRunReport<?, ?> run, TransitionType type) {
        return run.history().stream().filter(t -> t.type() == type).findFirst()
                .orElseThrow(() -> new AssertionError("no " + type + " in " + run.history()));
    }

    @Test
    void aLostCompensationCommandTimesOutIsRetriedAndItsLateDuplicateUndoesNothingMore() {
        AtomicInteger lostRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline, RemoteCompensationTest::definition, BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((airline, run) -> {
                    NoReplyExplorationTest.consistent(airline, run);
                    if (!lostReleases(run.environment()).isEmpty() && !run.crashedAndRecovered()) {
                        lostRuns.incrementAndGet();
                        // the first release timed out and was retried; the lost one came late, after the retry's
                        assertTrue(firstOf(run, TransitionType.COMPENSATION_RETRY_SCHEDULED).detail().contains("timed out"));
                        assertEquals(List.of("2", "1"), run.fixture().releaseCommands.stream()
                                .map(m -> m.header(SagaMessages.ATTEMPT).orElseThrow()).toList());
                        assertEquals(1, airline.releases, "released once under one key");
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> lost = report.scenarios(Kind.LOST_COMPENSATION_COMMAND);
        assertEquals(List.of(SCENARIO), lost.stream().map(ExplorationReport.Scenario::name).toList());
        assertEquals(SagaStatus.COMPENSATED, lost.get(0).finalStatus());
        assertEquals(List.of(), lost.get(0).violations());
        assertEquals(1, lostRuns.get());
        // crashes along its path, recovered, each once
        assertTrue(report.scenarios(Kind.CRASH_AFTER_WRITE).stream().anyMatch(s -> s.name().contains("COMPENSATION_RETRY_SCHEDULED")
                && s.name().endsWith("while " + SCENARIO)), report.scenarios().toString());
    }

    @Test
    void aLostCompensationCommandWhosePolicyGivesUpLeavesTheSagaNeedingAttentionWithTheTimeoutRecorded() {
        AtomicInteger lostRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline,
                        a -> booking(RetryPolicy.builder().maxAttempts(1).build(), Duration.ofSeconds(30)), BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((airline, run) -> {
                    NoReplyExplorationTest.consistent(airline, run);
                    if (!lostReleases(run.environment()).isEmpty() && !run.crashedAndRecovered()) {
                        lostRuns.incrementAndGet();
                        // not compensated silently: it needed attention for the timeout, the operator's retry undid
                        SagaTransition failed = firstOf(run, TransitionType.COMPENSATION_FAILED);
                        assertEquals("reserve-seat", failed.step());
                        assertTrue(failed.detail().contains("timed out after PT30S"), failed.detail());
                        List<TransitionType> types = run.history().stream().map(SagaTransition::type).toList();
                        assertTrue(types.indexOf(TransitionType.SAGA_NEEDS_ATTENTION) < types.indexOf(TransitionType.SAGA_RETRIED),
                                types.toString());
                        assertEquals(1, airline.releases);
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> lost = report.scenarios(Kind.LOST_COMPENSATION_COMMAND);
        assertEquals(List.of(SCENARIO), lost.stream().map(ExplorationReport.Scenario::name).toList());
        assertEquals(List.of(), lost.get(0).violations());
        assertEquals(1, lostRuns.get());
    }

    @Test
    void aLostCompensationCommandWhosePolicyHasAttemptsLeftButDoesNotRetryATimeoutNeedsAttentionAndIsNoViolation() {
        AtomicInteger lostRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline, a -> booking(RetryPolicy.builder().maxAttempts(3)
                        .nonRetryable(SagaTimeoutException.class).build(), Duration.ofSeconds(30)), BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((airline, run) -> {
                    NoReplyExplorationTest.consistent(airline, run);
                    if (!lostReleases(run.environment()).isEmpty() && !run.crashedAndRecovered()) {
                        lostRuns.incrementAndGet();
                        // two attempts left, yet a timeout is not retried: attention, then the operator's retry
                        assertEquals(List.of(), run.history().stream()
                                .filter(t -> t.type() == TransitionType.COMPENSATION_RETRY_SCHEDULED).toList());
                        assertTrue(firstOf(run, TransitionType.COMPENSATION_FAILED).detail().contains("timed out"));
                        firstOf(run, TransitionType.SAGA_NEEDS_ATTENTION);
                        assertEquals(1, airline.releases);
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> lost = report.scenarios(Kind.LOST_COMPENSATION_COMMAND);
        assertEquals(List.of(SCENARIO), lost.stream().map(ExplorationReport.Scenario::name).toList());
        assertEquals(SagaStatus.COMPENSATED, lost.get(0).finalStatus());
        assertEquals(List.of(), lost.get(0).violations());
        assertEquals(1, lostRuns.get());
    }

    /** An airline whose release desk releases on every command it gets, ignoring the idempotency key. */
    static Airline carelessAirline(SagaTestEnvironment env) {
        EventBus bus = env.bus();
        Airline airline = new Airline(bus, false);
        bus.subscribe("airline", "seat-release-commands", ReleaseSeat.class, SubscriptionOptions.fromEarliest(),
                (command, ctx) -> {
                    synchronized (airline) {
                        airline.releaseCommands.add(ctx.message());
                        airline.releases++;
                    }
                    SagaMessages.reply(bus, ctx.message(), new SeatReleased(command.seatId(), true));
                });
        return airline;
    }

    @Test
    void aParticipantWhoseCompensationIsNotIdempotentFailsTheExplorationInTheLostCompensationCommandScenario() {
        AssertionError error = assertThrows(AssertionError.class, () -> SagaCrashExplorer
                .forSaga(LostCompensationCommandExplorationTest::carelessAirline, RemoteCompensationTest::definition, BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant(NoReplyExplorationTest::consistent)
                .explore());

        String message = error.getMessage();
        assertTrue(message.contains("an effect was applied twice"), message);
        assertTrue(message.contains(SCENARIO), message);
    }

    @Test
    void aSagaWhoseCompensationHasNoTimeoutIsReportedWaitingForEverNotHung() {
        AssertionError error = assertThrows(AssertionError.class, () -> SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline,
                        a -> booking(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).build(),
                                null), BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant(NoReplyExplorationTest::consistent)
                .explore());

        String message = error.getMessage();
        assertTrue(message.contains(SCENARIO + ": the compensation of reserve-seat whose command of attempt 1 was lost has"
                + " no timeout (no compensationTimeout, no timeout): the saga waits for its reply for ever, COMPENSATING,"
                + " and never needs attention, so give the step a compensationTimeout"), message);
        assertTrue(message.contains(SCENARIO + ": expected COMPENSATED but ended COMPENSATING"), message);
        // only there: every other scenario's participant got its release
        assertTrue(message.contains("found 3 violation(s)"), message);
        assertFalse(message.contains("no reply to") || message.contains("happy path") || message.contains("crash after")
                || message.contains("crash before"), message);
    }
}
