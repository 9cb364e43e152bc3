package io.streamsaga.saga.internal;

import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.saga.SagaMessages;
import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@link DefaultSagaOrchestrator#answersAnotherSaga} reads from a reply's causation id: the start of the saga whose
 * command it answers, when the id is a command id of the form {@code <saga id>/<created at>/...}; any other causation
 * id, or none, tells nothing, and the reply is not taken for another saga's (a hand-built reply, a command sent before
 * command ids held the start, a saga id holding a slash).
 */
class ReplyOfAnotherSagaUnderTheIdTest {
    private static final Instant STARTED = Instant.parse("2026-01-01T00:00:00.123456789Z");

    private static Message replyCausedBy(String causationId) {
        Message.Builder reply = Message.builder("saga-replies").type("seat-reserved").payload("ok").header(MessageHeaders.SAGA_ID, "a/b");
        if (causationId != null) {
            reply.header(MessageHeaders.CAUSATION_ID, causationId);
        }
        return reply.build();
    }

    @Test
    void aReplyToACommandOfTheSagaItselfIsItsOwn() {
        String command = SagaMessages.commandId("a/b", STARTED, "pay", false, 1);
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy(command), "a/b", STARTED));
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy(command.replace("/pay/1", "/pay/compensation/2")),
                "a/b", STARTED));
    }

    @Test
    void aReplyToACommandOfASagaStartedAtAnotherInstantUnderTheIdIsAnothers() {
        String earlier = SagaMessages.commandId("a/b", STARTED.minusSeconds(3600), "pay", false, 1);
        assertTrue(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy(earlier), "a/b", STARTED));
        String whole = SagaMessages.commandId("a/b", Instant.parse("2026-01-01T00:00:00Z"), "pay", false, 1);
        assertTrue(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy(whole), "a/b", STARTED));
    }

    @Test
    void aReplyThatNamesNoCommandOfTheFormTellsNothing() {
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy(null), "a/b", STARTED));
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy("a/b/pay/1"), "a/b", STARTED),
                "a command id from before ids held the start");
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy("a/b"), "a/b", STARTED));
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy("a/b/2026-01-01T00:00:00Z"), "a/b", STARTED));
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy("a/bc/2026-01-01T00:00:00Z/pay/1"), "a/b",
                STARTED), "a causation id of another saga id");
        assertFalse(DefaultSagaOrchestrator.answersAnotherSaga(replyCausedBy("some-event-id"), "a/b", STARTED));
    }

    @Test
    void aReplyOfTheSagaWhoseStoredStartLostItsMicrosecondsIsTakenForAnothersAndToldApartAsTheStoresFault() {
        // A store keeping createdAt to the millisecond (against SagaStore's Javadoc) gives back STARTED without its
        // microseconds: the saga's own reply then looks like another saga's, which the engine warns of, naming the store.
        Instant storedToTheMillisecond = Instant.parse("2026-01-01T00:00:00.123Z");
        Message own = replyCausedBy(SagaMessages.commandId("a/b", STARTED, "pay", false, 1));
        assertTrue(DefaultSagaOrchestrator.answersAnotherSaga(own, "a/b", storedToTheMillisecond));
        assertTrue(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(own, "a/b", storedToTheMillisecond));

        assertFalse(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(own, "a/b", STARTED), "its own start");
        Message earlier = replyCausedBy(SagaMessages.commandId("a/b", STARTED.minusSeconds(3600), "pay", false, 1));
        assertFalse(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(earlier, "a/b", storedToTheMillisecond),
                "a saga started an hour before");
        Message sameMillisecondStored = replyCausedBy(SagaMessages.commandId("a/b",
                storedToTheMillisecond, "pay", false, 1));
        assertFalse(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(sameMillisecondStored, "a/b",
                storedToTheMillisecond), "a start on the millisecond is the saga's own");
        assertFalse(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(own, "a/b",
                Instant.parse("2026-01-01T00:00:00.123001Z")), "a stored start with microseconds is kept exactly");
        assertFalse(DefaultSagaOrchestrator.startMatchesOnlyToTheMillisecond(replyCausedBy("a/b/pay/1"), "a/b",
                storedToTheMillisecond), "a causation id naming no start");
    }
}
