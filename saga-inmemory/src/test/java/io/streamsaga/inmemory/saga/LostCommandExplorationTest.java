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
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The crash explorer's scenarios of a remote step's command that never reaches its participant
 * ({@link Kind#LOST_COMMAND}): the participant never acts, the step times out and is compensated as uncertain, so its
 * compensation must be harmless with nothing to undo.
 */
class LostCommandExplorationTest {
    private static final Booking BOOKING = new Booking("ann", null);

    /** Whether the run lost a command of event type {@code type} (the kit sends it to a topic no one reads). */
    private static boolean lostCommandOf(SagaTestEnvironment env, String type) {
        return env.transport().messages("__saga-test-kit-lost-commands").stream().anyMatch(m -> m.type().equals(type));
    }

    @Test
    void aRemoteStepWhoseCommandNeverReachesItsParticipantTimesOutAndItsCompensationFindsNothingToUndo() {
        AtomicInteger neverActed = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(NoReplyExplorationTest::airlineAndNotifier,
                        a -> NoReplyExplorationTest.notifying(a, RetryPolicy.builder().maxAttempts(3)
                                .initialBackoff(Duration.ofSeconds(1)).build()), BOOKING)
                .types(NoReplyExplorationTest.notifyingTypes())
                .invariant((airline, run) -> {
                    NoReplyExplorationTest.consistent(airline, run);
                    if (lostCommandOf(run.environment(), "reserve-seat") && run.status() == SagaStatus.COMPENSATED) {
                        neverActed.incrementAndGet();
                        // the seat was never reserved, yet its release was sent, found nothing and undid nothing
                        assertEquals(0, airline.reservations, "the participant never got the command");
                        assertTrue(!airline.releaseCommands.isEmpty(), "the uncertain step was compensated");
                        assertEquals(0, airline.releases);
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> lost = report.scenarios(Kind.LOST_COMMAND);
        assertEquals(List.of("command to reserve-seat never delivered", "command to notify lost once"),
                lost.stream().map(ExplorationReport.Scenario::name).toList());
        assertEquals(List.of(SagaStatus.COMPENSATED, SagaStatus.COMPLETED),
                lost.stream().map(ExplorationReport.Scenario::finalStatus).toList());
        assertTrue(lost.stream().allMatch(s -> s.violations().isEmpty()), lost.toString());
        // crashes along the lost command's path, recovered: recovery's re-sent command is lost too
        assertTrue(report.scenarios(Kind.CRASH_AFTER_WRITE).stream().anyMatch(s -> s.name().contains("STEP_TIMED_OUT reserve-seat")
                && s.name().endsWith("while command to reserve-seat never delivered")), report.scenarios().toString());
        assertTrue(neverActed.get() >= 2, "compensated runs whose participant never acted: " + neverActed.get());
    }

    /**
     * An airline that reserves by key, but answers a release of a seat it never reserved with a refusal (released
     * false), which the booking saga's compensation reply handler throws on: a compensation not harmless with nothing
     * to undo.
     */
    static final class StrictAirline {
        final Set<String> reserved = new HashSet<>();

        StrictAirline(EventBus bus) {
            bus.subscribe("airline", "seat-commands", ReserveSeat.class, (command, ctx) -> {
                String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    reserved.add(key);
                }
                SagaMessages.reply(bus, ctx.message(), new SeatReserved("seat-" + key));
            });
            bus.subscribe("airline", "seat-release-commands", ReleaseSeat.class, SubscriptionOptions.fromEarliest(),
                    (command, ctx) -> {
                        String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                        boolean known;
                        synchronized (this) {
                            known = reserved.contains(key.substring(0, key.length() - "/compensation".length()));
                        }
                        SagaMessages.reply(bus, ctx.message(), new SeatReleased(command.seatId(), known));
                    });
        }
    }

    @Test
    void aCompensationThatRefusesWhenItsParticipantNeverActedFailsTheExplorationInTheLostCommandScenario() {
        AssertionError error = assertThrows(AssertionError.class, () -> SagaCrashExplorer
                .forSaga((SagaTestEnvironment env) -> new StrictAirline(env.bus()),
                        airline -> RemoteCompensationTest.definition(false), BOOKING)
                .types(RemoteCompensationTest.types())
                .explore());

        String message = error.getMessage();
        assertTrue(message.contains("expected COMPENSATED but ended FAILED_NEEDS_ATTENTION (last failure: compensation of"
                + " reserve-seat, attempt 2: IllegalStateException: the airline refused to release null)"), message);
        assertTrue(message.contains("in: command to reserve-seat never delivered;"), message);
        // every other failure point's participant acted before the release came: the refusal is caught only here
        assertFalse(message.contains("happy path") || message.contains("no reply to") || message.contains("charge fails")
                || message.contains("cancelled"), message);
    }

    /**
     * An airline whose inbox takes every command topic by a wildcard ({@code *-commands}) and acts on the reservations
     * among them; its release desk, by exact name, releases what it is asked to.
     */
    static final class InboxAirline {
        int reservations;

        InboxAirline(EventBus bus) {
            bus.subscribe("airline-inbox", "*-commands", Message.class, (message, ctx) -> {
                if (message.type().equals("reserve-seat")) {
                    synchronized (this) {
                        reservations++;
                    }
                    SagaMessages.reply(bus, message, new SeatReserved("seat-"
                            + message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow()));
                }
            });
            bus.subscribe("airline", "seat-release-commands", ReleaseSeat.class, SubscriptionOptions.fromEarliest(),
                    (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new SeatReleased(command.seatId(), true)));
        }
    }

    @Test
    void aParticipantSubscribedByAWildcardNeverGetsTheCommandTheExplorerLoses() {
        AtomicInteger lostRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga((SagaTestEnvironment env) -> new InboxAirline(env.bus()),
                        airline -> RemoteCompensationTest.definition(false), BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((airline, run) -> {
                    if (lostCommandOf(run.environment(), "reserve-seat")) {
                        lostRuns.incrementAndGet();
                        assertEquals(0, airline.reservations, "the lost command reached a wildcard's subscriber");
                    }
                })
                .explore();

        assertEquals(List.of(SagaStatus.COMPENSATED), report.scenarios(Kind.LOST_COMMAND).stream()
                .map(ExplorationReport.Scenario::finalStatus).toList());
        assertTrue(lostRuns.get() >= 2, "runs that lost the command: " + lostRuns.get());
    }
}
