package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SagaInstanceTest {
    private static final Instant AT = Instant.parse("2026-11-26T10:00:00Z");

    private static SagaInstance instance(String sagaId, String sagaName, String dataType) {
        return new SagaInstance(sagaId, sagaName, 1, null, dataType, "data", SagaStatus.RUNNING,
                List.of(StepState.pending("one")), null, null, AT, AT, 1);
    }

    @Test
    void blankIdsNamesAndTypesAreRejectedWhateverWhitespaceTheyHold() {
        assertEquals("sagaId must not be blank, but was '\u2003'", assertThrows(ConfigurationException.class,
                () -> instance("\u2003", "order", "order-data")).getMessage());
        assertEquals("sagaName must not be blank, but was ' '", assertThrows(ConfigurationException.class,
                () -> instance("s-1", " ", "order-data")).getMessage());
        assertEquals("dataType must not be blank, but was null", assertThrows(ConfigurationException.class,
                () -> instance("s-1", "order", null)).getMessage());
        assertEquals("step name must not be blank, but was '\\u0009'", assertThrows(ConfigurationException.class,
                () -> StepState.pending("\t")).getMessage());
        assertEquals("\u2003s-1", instance("\u2003s-1", "order", "order-data").sagaId());
    }

    @Test
    void aBlankSagaIdIsQuotedBounded() {
        // A saga id may come from a message (a saga started per event): 10,000 spaces went whole into the refusal.
        String refusal = assertThrows(ConfigurationException.class, () -> instance(" ".repeat(10_000), "order", "order-data"))
                .getMessage();
        assertEquals("sagaId must not be blank, but was '" + " ".repeat(64) + "...' (10000 characters)", refusal);
    }

    @Test
    void aBlankSagaNameDataTypeStepNameOrErrorClassIsQuotedBoundedToo() {
        // They went whole into the refusal (quoted by hand), a stored row's or a message's value among them.
        String blank = " ".repeat(10_000);
        String quoted = "'" + " ".repeat(64) + "...' (10000 characters)";
        assertEquals("sagaName must not be blank, but was " + quoted, assertThrows(ConfigurationException.class,
                () -> instance("s-1", blank, "order-data")).getMessage());
        assertEquals("dataType must not be blank, but was " + quoted, assertThrows(ConfigurationException.class,
                () -> instance("s-1", "order", blank)).getMessage());
        assertEquals("step name must not be blank, but was " + quoted, assertThrows(ConfigurationException.class,
                () -> StepState.pending(blank)).getMessage());
        assertEquals("errorClass must not be blank, but was " + quoted, assertThrows(ConfigurationException.class,
                () -> new SagaFailure("one", blank, "declined")).getMessage());
    }
}
