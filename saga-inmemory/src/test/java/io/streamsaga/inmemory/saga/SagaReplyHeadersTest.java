package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link SagaMessages#replyHeaders}: a participant that sends its reply another way than {@link SagaMessages#reply}
 * (appended to its own outbox with the effect, say, which its relay publishes outside the command's handler) puts the
 * same correlation headers on it, the command's id as causation id included, without copying header names by hand.
 */
class SagaReplyHeadersTest {
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final SeatDeskFixture desk = new SeatDeskFixture(scheduler);
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
            .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
            .onReply(SeatReserved.class, (b, reply) -> b)
            .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
            .onCompensationReply(SeatReleased.class, (b, reply) -> {
            })
            .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE)
            .step("charge").action((b, ctx) -> {
                if (b.passenger().equals("carol")) {
                    throw new IllegalStateException("card declined");
                }
                return b;
            }).retry(RetryPolicy.NONE)
            .build();

    @AfterEach
    void close() {
        desk.close();
    }

    private SagaOrchestrator orchestrator() {
        return SagaOrchestrator.builder().store(store).bus(desk.bus).scheduler(scheduler).register(definition).build();
    }

    /** Sent as a participant's outbox relay would: a plain publish, outside the command's handler. */
    private void answerWithReplyHeaders(Message command, Object reply) {
        desk.bus.publish(command.header(SagaMessages.REPLY_TOPIC).orElseThrow(), command.key(), reply,
                SagaMessages.replyHeaders(command));
        desk.transport.drainAll();
    }

    private static Map<String, String> correlation(Message reply) {
        Map<String, String> headers = new java.util.HashMap<>(reply.headers());
        headers.keySet().retainAll(java.util.Set.of(MessageHeaders.SAGA_ID, SagaMessages.STEP, SagaMessages.ATTEMPT,
                SagaMessages.PHASE, MessageHeaders.CAUSATION_ID));
        return headers;
    }

    @Test
    void aReplySentWithItsCommandsReplyHeadersCompletesTheStepWithTheHeadersSagaMessagesReplySets() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null,
                    new Booking("bob")).toCompletableFuture();
            desk.transport.drainAll();
            Message command = desk.reserveCommands.get(0);

            answerWithReplyHeaders(command, new SeatReserved(true));

            assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
            assertEquals(Map.of(MessageHeaders.SAGA_ID, "saga-1", SagaMessages.STEP, "reserve-seat",
                    SagaMessages.ATTEMPT, "1", MessageHeaders.CAUSATION_ID, command.id()),
                    correlation(desk.transport.messages("saga-replies").get(0)));
        }
    }

    @Test
    void aReplySentOutsideItsCommandsHandlerCarriesTheCommandsCorrelationIdSoTheConversationStaysOneInTheLogs() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            orchestrator.start(definition, "saga-1", null, new Booking("bob"));
            desk.transport.drainAll();
            Message command = desk.reserveCommands.get(0);
            String conversation = command.correlationId().orElseThrow();

            answerWithReplyHeaders(command, new SeatReserved(true));
            SagaMessages.reply(desk.bus, command, new SeatReserved(true)); // SagaMessages.reply from another thread

            assertEquals(conversation, SagaMessages.replyHeaders(command).get(MessageHeaders.CORRELATION_ID));
            assertEquals(conversation, desk.transport.messages("saga-replies").get(0).correlationId().orElseThrow());
            assertEquals(conversation, desk.transport.messages("saga-replies").get(1).correlationId().orElseThrow());
        }
    }

    @Test
    void aCompensationsReplySentWithItsCommandsReplyHeadersCarriesThePhaseAndSettlesTheCompensation() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null,
                    new Booking("carol")).toCompletableFuture();
            desk.transport.drainAll();
            answerWithReplyHeaders(desk.reserveCommands.get(0), new SeatReserved(true));
            Message release = desk.releaseCommands.get(0);

            answerWithReplyHeaders(release, new SeatReleased(true));

            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
            assertEquals(Map.of(MessageHeaders.SAGA_ID, "saga-1", SagaMessages.STEP, "reserve-seat",
                    SagaMessages.ATTEMPT, "1", SagaMessages.PHASE, SagaMessages.COMPENSATION,
                    MessageHeaders.CAUSATION_ID, release.id()),
                    correlation(desk.transport.messages("saga-replies").get(1)));
        }
    }

    @Test
    void aLateReplySentWithThePurgedSagasReplyHeadersIsIgnoredByTheSagaStartedUnderItsId() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            orchestrator.start(definition, "saga-1", null, new Booking("alice"));
            desk.transport.drainAll();
            scheduler.advance(Duration.ofMinutes(1)); // alice's step times out, her seat is released
            desk.transport.drainAll();
            answerWithReplyHeaders(desk.releaseCommands.get(0), new SeatReleased(true));
            assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
            scheduler.advance(Duration.ofSeconds(1));
            assertEquals(1, store.deleteFinishedBefore(scheduler.now()), "retention purges alice's saga");
            CompletableFuture<SagaResult<Booking>> bob = orchestrator.start(definition, "saga-1", null,
                    new Booking("bob")).toCompletableFuture();
            desk.transport.drainAll();

            answerWithReplyHeaders(desk.reserveCommands.get(0), new SeatReserved(true)); // the purged saga's, late

            assertFalse(bob.isDone());
            answerWithReplyHeaders(desk.reserveCommands.get(1), new SeatReserved(true));
            assertEquals("bob", bob.join().data().passenger());
        }
    }

    @Test
    void replyHeadersRefuseAMessageThatIsNotASagaCommand() {
        Message event = Message.builder("seat-events").type("seat-reserved").payload(new byte[0]).build();

        SagaException refused = assertThrows(SagaException.class, () -> SagaMessages.replyHeaders(event));
        assertFalse(refused.isRetriable());
    }
}
