package io.streamsaga.inmemory.saga;

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
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The crash explorer's scenarios of a remote participant that never replies ({@link Kind#NO_REPLY}). */
class NoReplyExplorationTest {
    private static final Booking BOOKING = new Booking("ann", null);

    static void consistent(Airline airline, SagaRunReport<Airline, Booking> run) {
        assertTrue(airline.reservations <= 1 && airline.releases <= 1, "an effect was applied twice");
        if (run.status() == SagaStatus.COMPENSATED) {
            assertEquals(airline.reservations, airline.releases, "reservations vs releases");
        } else { // completed, or needing attention past the pivot: nothing is undone
            assertEquals(0, airline.releases);
        }
    }

    private static boolean timedOut(List<SagaTransition> history, String step) {
        return history.stream().anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT && t.step().equals(step));
    }

    @Test
    void aRemoteStepWhoseParticipantNeverRepliesTimesOutAndIsCompensatedAndAnUnansweredCompensationIsSentAgain() {
        AtomicInteger timedOutRuns = new AtomicInteger();
        AtomicInteger unansweredCompensationRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline, RemoteCompensationTest::definition, BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((airline, run) -> {
                    consistent(airline, run);
                    // a lost reply times reserve-seat out, and so does a lost command (LostCommandExplorationTest)
                    if (timedOut(run.history(), "reserve-seat")
                            && run.environment().transport().messages("__saga-test-kit-lost-commands").isEmpty()) {
                        timedOutRuns.incrementAndGet();
                        // the participant acted: its reservation is undone by key, though no seat id was recorded
                        assertEquals(1, airline.reservations, "the participant acted on the command");
                        assertTrue(run.environment().transport().messages("__saga-test-kit-lost-replies").size() > 0,
                                "its replies were lost");
                    }
                    List<Message> lostReleases = run.environment().transport().messages("__saga-test-kit-lost-replies")
                            .stream()
                            .filter(m -> SagaMessages.COMPENSATION.equals(m.header(SagaMessages.PHASE).orElse(null)))
                            .toList();
                    if (!lostReleases.isEmpty()) { // the release's reply was lost: its timeout sent the release again
                        unansweredCompensationRuns.incrementAndGet();
                        assertEquals(1, lostReleases.size(), "one compensation reply lost");
                        assertTrue(airline.releaseCommands.size() >= 2, "the release sent again: " + airline.releaseCommands
                                .stream().map(m -> m.header(SagaMessages.ATTEMPT).orElse("?")).toList());
                        assertEquals(1, airline.releases, "the participant released once");
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> noReply = report.scenarios(Kind.NO_REPLY);
        assertEquals(List.of("no reply to reserve-seat ever", "no reply to the compensation of reserve-seat once (charge fails)"),
                noReply.stream().map(ExplorationReport.Scenario::name).toList());
        assertTrue(noReply.stream().allMatch(s -> s.finalStatus() == SagaStatus.COMPENSATED && s.violations().isEmpty()),
                noReply.toString());
        assertEquals(List.of(), report.skipped());
        // a crash right after the step's timeout, recovered: explored as any write only a failure path makes
        assertTrue(report.scenarios(Kind.CRASH_AFTER_WRITE).stream().anyMatch(s -> s.name().contains("STEP_TIMED_OUT reserve-seat")
                && s.name().endsWith("while no reply to reserve-seat ever")), report.scenarios().toString());
        assertTrue(timedOutRuns.get() >= 2, "runs in which reserve-seat timed out: " + timedOutRuns.get());
        assertTrue(unansweredCompensationRuns.get() >= 1,
                "runs in which the release's reply was lost: " + unansweredCompensationRuns.get());
    }

    /**
     * The airline, and an audit that reads every reply topic by a wildcard ({@code *-replies}), as a consumer tracing
     * the replies of all sagas would, and records the topics of the replies it got.
     */
    record AuditedAirline(Airline airline, Set<String> auditedTopics) {
        static AuditedAirline of(SagaTestEnvironment env) {
            Set<String> topics = ConcurrentHashMap.newKeySet();
            env.bus().subscribe("reply-audit", "*-replies", Message.class,
                    (message, ctx) -> topics.add(ctx.message().topic()));
            return new AuditedAirline(RemoteCompensationTest.airline(env), topics);
        }
    }

    @Test
    void aConsumerSubscribedByAWildcardNeverGetsTheReplyTheExplorerLoses() {
        AtomicInteger lostRuns = new AtomicInteger();
        ExplorationReport report = SagaCrashExplorer
                .forSaga(AuditedAirline::of, audited -> RemoteCompensationTest.definition(false), BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant((audited, run) -> {
                    assertEquals(Set.of("saga-replies"), audited.auditedTopics(),
                            "the wildcard's subscriber got the saga's replies, and a lost one if another topic shows");
                    if (!run.environment().transport().messages("__saga-test-kit-lost-replies").isEmpty()) {
                        lostRuns.incrementAndGet();
                    }
                })
                .explore();

        List<ExplorationReport.Scenario> noReply = report.scenarios(Kind.NO_REPLY);
        assertTrue(!noReply.isEmpty() && noReply.stream().allMatch(s -> s.finalStatus() == SagaStatus.COMPENSATED
                && s.violations().isEmpty()), noReply.toString());
        assertTrue(lostRuns.get() >= 2, "runs that lost a reply: " + lostRuns.get());
    }

    record Notify(String passenger) {
    }

    record Notified(String passenger) {
    }

    /** The booking saga, charged as its pivot, then a retriable remote step that notifies the passenger. */
    static SagaDefinition<Booking> notifying(Airline airline, RetryPolicy notifyRetry) {
        return SagaDefinition.builder("notifying-booking-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b.withSeat(reply.seatId()))
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.seatId()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                })
                .timeout(Duration.ofSeconds(30))
                .pivot("charge").action((b, ctx) -> b)
                .retriable("notify")
                .command("notice-commands", (b, ctx) -> new Notify(b.passenger()))
                .onReply(Notified.class, (b, reply) -> b)
                .timeout(Duration.ofSeconds(30))
                .retry(notifyRetry)
                .build();
    }

    /** The airline, and a notifier that answers every notice. */
    static Airline airlineAndNotifier(SagaTestEnvironment env) {
        env.bus().subscribe("notifier", "notice-commands", Notify.class,
                (command, ctx) -> SagaMessages.reply(env.bus(), ctx.message(), new Notified(command.passenger())));
        return RemoteCompensationTest.airline(env);
    }

    static TypeRegistry notifyingTypes() {
        return TypeRegistry.builder()
                .register("reserve-seat", 1, ReserveSeat.class)
                .register("seat-reserved", 1, SeatReserved.class)
                .register("release-seat", 1, ReleaseSeat.class)
                .register("seat-released", 1, SeatReleased.class)
                .register("notify", 1, Notify.class)
                .register("notified", 1, Notified.class)
                .build();
    }

    private static ExplorationReport.Scenario noReplyToNotify(RetryPolicy notifyRetry) {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(NoReplyExplorationTest::airlineAndNotifier, a -> notifying(a, notifyRetry), BOOKING)
                .types(notifyingTypes())
                .invariant(NoReplyExplorationTest::consistent)
                .explore();
        return report.scenarios(Kind.NO_REPLY).stream().filter(s -> s.name().startsWith("no reply to notify"))
                .findFirst().orElseThrow(() -> new AssertionError("no scenario of notify: " + report.scenarios()));
    }

    @Test
    void aRetriableRemoteStepNotAnsweredOnceCompletesWhenItsPolicyRetriesTheTimeoutAndElseNeedsAttention() {
        ExplorationReport.Scenario retried = noReplyToNotify(RetryPolicy.builder().maxAttempts(3)
                .initialBackoff(Duration.ofSeconds(1)).build());
        assertEquals("no reply to notify once", retried.name());
        assertEquals(SagaStatus.COMPLETED, retried.finalStatus());

        ExplorationReport.Scenario notRetried = noReplyToNotify(RetryPolicy.builder().maxAttempts(1).build());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, notRetried.finalStatus());
        assertEquals(List.of(), notRetried.violations());
    }

    /**
     * The booking saga with no timeout on its remote step, which waits for its reply for ever; its compensation's
     * waits are bounded ({@code compensationTimeout}): one without a timeout is a violation once its command is lost
     * (LostCompensationCommandExplorationTest).
     */
    static SagaDefinition<Booking> untimed(Airline airline) {
        return SagaDefinition.builder("untimed-booking-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b.withSeat(reply.seatId()))
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.seatId()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                })
                .compensationTimeout(Duration.ofMinutes(5))
                .step("charge").action((b, ctx) -> b)
                .build();
    }

    @Test
    void aRemoteStepWithoutATimeoutIsReportedSkippedWithWhyNotAsAViolation() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(RemoteCompensationTest::airline, NoReplyExplorationTest::untimed, BOOKING)
                .types(RemoteCompensationTest.types())
                .invariant(NoReplyExplorationTest::consistent)
                .explore();

        assertEquals(List.of("no reply to the compensation of reserve-seat once (charge fails)"),
                report.scenarios(Kind.NO_REPLY).stream().map(ExplorationReport.Scenario::name).toList());
        assertEquals(List.of("no reply to reserve-seat ever: step reserve-seat has no timeout, so the saga waits for its"
                        + " reply for ever, by design",
                "command to reserve-seat never delivered: step reserve-seat has no timeout, so the saga waits for its"
                        + " reply for ever, by design"), report.skipped());
        assertTrue(report.violations().isEmpty(), report.violations().toString());
    }
}
