package io.streamsaga.saga;

import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SagaMessages.reply refuses a message that is no saga command, quoting its id (from the message) bounded. */
class SagaMessagesReplyRefusalTest {
    @Test
    void aMessageWithoutAReplyTopicIsRefusedQuotingItsIdBounded() {
        Message notACommand = Message.builder("t").id("m-" + "x".repeat(10_000)).type("e").payload("{}").build();

        String refusal = assertThrows(SagaException.class, () -> SagaMessages.reply(null, notACommand, "ok")).getMessage();

        assertTrue(refusal.length() < 300 && refusal.contains("'m-xxx") && refusal.contains("(10002 characters)"), refusal);
    }
}
