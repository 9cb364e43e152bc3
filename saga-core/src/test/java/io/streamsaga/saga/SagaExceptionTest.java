package io.streamsaga.saga;

import io.streamsaga.bus.PublishException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The factories quote the saga id bounded ({@code StreamSagaException.quote}): it comes from a caller (an operator
 * call) or a message (a saga started per event), and a 10,000-character id went whole into the message.
 */
class SagaExceptionTest {
    private static final String HUGE = "s-" + "x".repeat(10_000);

    private static void assertQuotedBounded(String text) {
        assertTrue(text.length() < 300 && text.contains("'s-xxx") && text.contains("(10002 characters)"), text);
    }

    @Test
    void theFactoriesQuoteTheSagaIdBounded() {
        assertQuotedBounded(SagaException.notFound(HUGE).getMessage());
        assertQuotedBounded(SagaException.cancelled(HUGE).getMessage());
        assertQuotedBounded(SagaException.illegalState(HUGE, "charge", "cannot cancel").getMessage());
        assertEquals(HUGE, SagaException.notFound(HUGE).sagaId(), "the accessor keeps the id as it is");

        assertEquals("saga 's-1' not found", SagaException.notFound("s-1").getMessage());
        assertEquals("saga 's-1' was cancelled", SagaException.cancelled("s-1").getMessage());
        assertEquals("saga 's-1' step charge: cannot cancel",
                SagaException.illegalState("s-1", "charge", "cannot cancel").getMessage());
    }

    @Test
    void aPublishExceptionQuotesItsTopicBounded() {
        String topic = "s-" + "x".repeat(10_000);
        assertQuotedBounded(new PublishException(topic, "transport is closed", null, false).getMessage());
        assertEquals("cannot publish to 'orders': transport is closed",
                new PublishException("orders", "transport is closed", null, false).getMessage());
    }
}
