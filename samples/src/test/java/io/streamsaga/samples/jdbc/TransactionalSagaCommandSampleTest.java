package io.streamsaga.samples.jdbc;

import io.streamsaga.saga.SagaOutcome;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TransactionalSagaCommandSampleTest {
    @Test
    void commandStoredWithItsTransitionSurvivesTheCrashAndChargesOnceDespiteTheResend() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TransactionalSagaCommandSample.Result result = TransactionalSagaCommandSample.run(null,
                new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertTrue(result.crashed());
        assertEquals(2, result.commandDeliveries(), "sent by the relay, then re-sent after its crash");
        assertEquals(1, result.charges(), "charged once past the inbox");
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertTrue(result.paymentId().startsWith("pay-o-"), result.paymentId());
    }
}
