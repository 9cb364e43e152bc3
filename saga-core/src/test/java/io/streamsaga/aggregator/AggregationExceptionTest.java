package io.streamsaga.aggregator;

import io.streamsaga.splitter.SequenceInfo;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The aggregator's refusals go into logs and a dead letter's {@code dlt-error-message}: the group key and the
 * sequence id they name come from the message, and so do the message ids, so they are quoted bounded (as
 * {@code StreamSagaException.quote}).
 */
class AggregationExceptionTest {
    private static final String HUGE = "k".repeat(1000);

    @Test
    void everyRefusalQuotesTheGroupKeyAndSequenceIdFromTheMessageBounded() {
        SequenceInfo part = new SequenceInfo(HUGE, 3, OptionalInt.of(3), true);
        List<AggregationException> refusals = List.of(
                AggregationException.latePart("items", HUGE, GroupState.COMPLETED, "m-1"),
                AggregationException.closing("items", HUGE, GroupState.RELEASING, "m-1"),
                AggregationException.outOfSequence("items", HUGE, "m-1", part, 2),
                AggregationException.duplicateNumber("items", HUGE, "m-1", part, "m-0"),
                AggregationException.timedOut("items", HUGE, 2),
                AggregationException.contended("items", HUGE, 50));

        for (AggregationException refused : refusals) {
            String message = refused.getMessage();
            assertTrue(message.length() < 500 && message.contains("'" + "k".repeat(64) + "...' (1000 characters)"), message);
            assertEquals(HUGE, refused.key(), "the key itself is kept whole for the caller");
        }
    }

    @Test
    void everyRefusalQuotesTheMessageIdsBounded() {
        String id = "m".repeat(10_000);
        SequenceInfo part = new SequenceInfo("s-1", 3, OptionalInt.of(3), true);
        List<AggregationException> refusals = List.of(
                AggregationException.latePart("items", "o-1", GroupState.COMPLETED, id),
                AggregationException.closing("items", "o-1", GroupState.RELEASING, id),
                AggregationException.uncorrelated("items", id),
                AggregationException.outOfSequence("items", "o-1", id, part, 2),
                AggregationException.malformedSequence("items", "o-1", id, "s-1", "0", "2", null),
                AggregationException.duplicateNumber("items", "o-1", id, part, id));

        for (AggregationException refused : refusals) {
            String message = refused.getMessage();
            assertTrue(message.length() < 500 && message.contains("'" + "m".repeat(64) + "...' (10000 characters)"), message);
        }
    }

    @Test
    void aShortKeyAndSequenceIdAreQuotedAsBefore() {
        SequenceInfo part = new SequenceInfo("s-1", 3, OptionalInt.of(3), true);
        assertEquals("late part 'm-1' for group 'o-1' of aggregator 'items', which is already COMPLETED",
                AggregationException.latePart("items", "o-1", GroupState.COMPLETED, "m-1").getMessage());
        assertEquals("part 'm-1' of sequence 's-1' (number 3, size 3) does not fit the size 2 the group 'o-1' of aggregator 'items' knows",
                AggregationException.outOfSequence("items", "o-1", "m-1", part, 2).getMessage());
    }
}
