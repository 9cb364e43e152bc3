package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.CompensationReplyHandler;
import io.streamsaga.saga.ReplyHandler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reply carries the attempt of the command it answers ({@link SagaMessages#ATTEMPT}, copied by {@link
 * SagaMessages#reply}); one answering an attempt that a later one superseded (its wait timed out and the step, or the
 * compensation, was retried by its policy or by the operator) arrives late: it is acknowledged and ignored, not taken
 * for the outcome of the attempt the saga waits for, which its own reply settles. The participants here hold each
 * command and answer it when the test says, the earlier attempt's answer being a refusal from before they were fixed.
 */
class ReplyOfASupersededAttemptTest {
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final SeatDeskFixture desk = new SeatDeskFixture(scheduler);
    private final InMemoryTransport transport = desk.transport;
    private final EventBus bus = desk.bus;
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<Message> reserveCommands = desk.reserveCommands;
    private final List<Message> releaseCommands = desk.releaseCommands;

    @AfterEach
    void close() {
        desk.close();
        scheduler.close();
    }

    /** The saga's remote step reserve-seat, its reply handled by {@code onReply}. */
    private static SagaDefinition.StepBuilder<Booking> reserveSeat(ReplyHandler<Booking, SeatReserved> onReply) {
        return SagaDefinition.builder("seat-saga", Booking.class).step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, onReply);
    }

    /** {@code step} undone by the seat's release, a remote compensation whose reply {@code check} checks. */
    private static SagaDefinition.StepBuilder<Booking> releasedBy(SagaDefinition.StepBuilder<Booking> step,
                                                                   CompensationReplyHandler<Booking, SeatReleased> check) {
        return step.compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
                .onCompensationReply(SeatReleased.class, check);
    }

    /** {@code step} with a timeout of a minute and one retry, sent at once. */
    private static SagaDefinition<Booking> retriedOnceAfterAMinute(SagaDefinition.StepBuilder<Booking> step) {
        return step.timeout(Duration.ofMinutes(1)).retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).build();
    }

    /** {@code step} followed by a charge that fails. */
    private static SagaDefinition<Booking> followedByADeclinedCharge(SagaDefinition.StepBuilder<Booking> step) {
        return step.step("charge").action((b, ctx) -> {
            throw new IllegalStateException("card declined");
        }).build();
    }

    private void answer(Message command, Object reply) {
        desk.answer(command, reply);
    }

    @Test
    void aLateRefusalOfACompensationsAttemptThatTheOperatorRetriedIsIgnoredAndTheRetrysReplySettlesIt() {
        SagaDefinition<Booking> definition = followedByADeclinedCharge(releasedBy(reserveSeat((b, reply) -> b), (b, reply) -> {
            if (!reply.released()) {
                throw new IllegalStateException("release refused");
            }
        }).compensationRetry(RetryPolicy.NONE).compensationTimeout(Duration.ofMinutes(1)));
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Booking("bob"));
        transport.drainAll();
        answer(reserveCommands.get(0), new SeatReserved(true));
        scheduler.advance(Duration.ofMinutes(1)); // the release desk does not answer in time: the saga needs attention
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        CompletableFuture<SagaResult<Object>> retried = orchestrator.retryCompensation("saga-1").toCompletableFuture();
        transport.drainAll();
        assertEquals(List.of("1", "2"), releaseCommands.stream()
                .map(m -> m.header(SagaMessages.ATTEMPT).orElseThrow()).toList());
        answer(releaseCommands.get(0), new SeatReleased(false)); // the first attempt's answer, from before the fix

        assertFalse(retried.isDone(), "the first attempt's late refusal was taken for the retry's outcome: "
                + store.find("saga-1").orElseThrow());
        assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "an ignored reply is acknowledged");

        answer(releaseCommands.get(1), new SeatReleased(true));
        assertEquals(SagaOutcome.COMPENSATED, retried.join().outcome());
        orchestrator.close();
    }

    @Test
    void aLateRefusalOfAStepsAttemptThatTimedOutAndWasRetriedIsIgnoredAndTheRetrysReplyCompletesTheStep() {
        SagaDefinition<Booking> definition = retriedOnceAfterAMinute(releasedBy(reserveSeat((b, reply) -> {
            if (!reply.reserved()) {
                throw new IllegalStateException("no seat");
            }
            return b;
        }), (b, reply) -> { }));
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(1)); // the first attempt times out; the second is sent at once
        transport.drainAll();
        assertEquals(List.of("1", "2"), reserveCommands.stream()
                .map(m -> m.header(SagaMessages.ATTEMPT).orElseThrow()).toList());

        answer(reserveCommands.get(0), new SeatReserved(false)); // the first attempt's answer, late

        assertFalse(result.isDone(), "the first attempt's late refusal was taken for the second's outcome: "
                + store.find("saga-1").orElseThrow());
        assertEquals(List.of(), releaseCommands, "the step was compensated on the first attempt's late refusal");
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "an ignored reply is acknowledged");

        answer(reserveCommands.get(1), new SeatReserved(true));
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
        orchestrator.close();
    }

    @Test
    void aLateReplyOfASupersededAttemptDoesNotMakeAnOrchestratorThatDoesNotDriveTheSagaTakeItOver() {
        SagaDefinition<Booking> definition = retriedOnceAfterAMinute(reserveSeat((b, reply) -> b));
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        first.start(definition, "saga-1", null, new Booking("bob"));
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(1));
        transport.drainAll();
        assertEquals(2, reserveCommands.size());
        first.close(); // the process ends while the second attempt waits; the next one has not run recover() yet
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();

        SagaInstance waiting = store.find("saga-1").orElseThrow();

        answer(reserveCommands.get(0), new SeatReserved(true));

        assertEquals(waiting, store.find("saga-1").orElseThrow(), "the reply of the superseded attempt was taken by an"
                + " orchestrator that adopted the saga for it");
        assertEquals(2, reserveCommands.size());
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "an ignored reply is acknowledged");
        assertEquals(List.of("saga-1"), second.recover().resumed());
        transport.drainAll();
        answer(reserveCommands.get(2), new SeatReserved(true));
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        second.close();
    }

    @Test
    void aReplyOfALaterAttemptThatAnotherOrchestratorSentReachingARunStillWaitingForTheEarlierOneIsTakenByTheSaga() {
        SagaDefinition<Booking> definition = retriedOnceAfterAMinute(reserveSeat((b, reply) -> b));
        // Node A, whose bus redelivers a reply its handling left unacknowledged, drives the saga, waiting for attempt 1.
        EventBus busA = EventBus.builder(transport).scheduler(scheduler)
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                        .register("seat-reserved", 1, SeatReserved.class).build())
                .build();
        SagaOrchestrator nodeA = SagaOrchestrator.builder().store(store).bus(busA).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = nodeA.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        transport.drainAll();
        assertEquals(1, reserveCommands.size());
        // Node B (its own bus and clock) adopts the saga, as a recovery does, and its wait times out first: it stores
        // and sends attempt 2, while node A's run, which wrote nothing since, still waits for attempt 1.
        InMemoryTransport transportB = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler schedulerB = new VirtualScheduler(scheduler.now());
        EventBus busB = EventBus.builder(transportB).scheduler(schedulerB).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                        .register("seat-reserved", 1, SeatReserved.class).build())
                .build();
        List<Message> commandsOfB = new CopyOnWriteArrayList<>();
        busB.subscribe("airline", "seat-commands", ReserveSeat.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                (command, ctx) -> commandsOfB.add(ctx.message()));
        SagaOrchestrator nodeB = SagaOrchestrator.builder().store(store).bus(busB).scheduler(schedulerB)
                .register(definition).build();
        assertEquals(List.of("saga-1"), nodeB.recover().resumed());
        schedulerB.advance(Duration.ofMinutes(1));
        transportB.drainAll();
        Message secondAttempt = commandsOfB.get(commandsOfB.size() - 1);
        assertEquals("2", secondAttempt.header(SagaMessages.ATTEMPT).orElseThrow());

        // The participant's answer to attempt 2 reaches node A.
        SagaMessages.reply(busA, secondAttempt, new SeatReserved(true));
        transport.drainAll();

        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status(), "the reply of the attempt the"
                + " saga waits for was acknowledged and dropped by a run that waited for an earlier one: "
                + store.find("saga-1").orElseThrow());
        assertEquals(List.of(), transport.messages("saga-replies.DLT"));
        assertTrue(result.isCompletedExceptionally(), "node A's run lost its saga to node B's write");
        nodeA.close();
        nodeB.close();
        busA.close();
        busB.close();
        transportB.close();
        schedulerB.close();
    }

    @Test
    void aReplyWhoseAttemptHeaderIsNotAnAttemptNumberIsDeadLetteredNamingIt() {
        SagaDefinition<Booking> definition = reserveSeat((b, reply) -> b).build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        transport.drainAll();

        // Not written by SagaMessages.reply: its attempt is a word.
        bus.publish("saga-replies", "saga-1", new SeatReserved(true), java.util.Map.of(MessageHeaders.SAGA_ID, "saga-1",
                SagaMessages.STEP, "reserve-seat", SagaMessages.ATTEMPT, "first"));
        transport.drainAll();

        List<Message> deadLetters = transport.messages("saga-replies.DLT");
        assertEquals(1, deadLetters.size(), "a reply whose attempt header names no attempt was dropped silently");
        String reason = deadLetters.get(0).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow();
        assertTrue(reason.contains(SagaMessages.ATTEMPT) && reason.contains("first"), reason);
        assertFalse(result.isDone());
        answer(reserveCommands.get(0), new SeatReserved(true));
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
        orchestrator.close();
    }

    @Test
    void aRemoteCompensationThatARecoveryStartsAgainAsANewAttemptIgnoresTheFirstAttemptsReplyAndSettlesOnTheNewOnes() {
        SagaDefinition<Booking> definition = followedByADeclinedCharge(releasedBy(reserveSeat((b, reply) -> b),
                (b, reply) -> { }));
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        first.start(definition, "saga-1", null, new Booking("bob"));
        transport.drainAll();
        answer(reserveCommands.get(0), new SeatReserved(true));
        assertEquals(1, releaseCommands.size());
        first.close(); // the process ends while the compensation's first attempt waits for its reply
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        assertEquals(List.of("saga-1"), second.recover().resumed());
        transport.drainAll();
        assertEquals(List.of("1", "2"), releaseCommands.stream()
                .map(m -> m.header(SagaMessages.ATTEMPT).orElseThrow()).toList());

        answer(releaseCommands.get(0), new SeatReleased(true)); // the first attempt's, whose outcome was never recorded

        assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "an ignored reply is acknowledged");
        answer(releaseCommands.get(1), new SeatReleased(true));
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        second.close();
    }
}
