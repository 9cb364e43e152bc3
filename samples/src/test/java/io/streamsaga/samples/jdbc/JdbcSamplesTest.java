package io.streamsaga.samples.jdbc;

import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.samples.saga.OrderSagaSample;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JdbcSamplesTest {
    private final PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

    @Test
    void outboxSampleKeepsOrderAndEventTogetherAndChargesEachOrderOnceDespiteOutageAndRelayCrash() {
        TransactionalOutboxSample.Result result = TransactionalOutboxSample.run(null, out);
        assertEquals(List.of("o-1", "o-3"), result.orders(), "the rejected order left no row");
        assertEquals(List.of("o-1", "o-3"), result.charged(), "each order charged once, in order");
        assertEquals(3, result.deliveries(), "o-1 was delivered twice (at least once)");
        assertEquals(0, result.pending());
        assertTrue(result.relayAttempts() >= 5);
    }

    @Test
    void durableOrderSagaCompletesAfterTheCrash() {
        DurableOrderSagaSample.Result result = DurableOrderSagaSample.run(false, 4, null, out);
        assertTrue(result.crashed());
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals("CREATED", result.orderStatus());
        assertTrue(result.reserved());
        assertEquals("CHARGED", result.payment());
    }

    @Test
    void durableOrderSagaWithADeclinedCardIsCompensatedInReverseOrderAfterTheCrash() {
        DurableOrderSagaSample.Result result = DurableOrderSagaSample.run(true, 4, null, out);
        assertTrue(result.crashed());
        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEquals("CANCELLED", result.orderStatus());
        assertFalse(result.reserved());
        assertNull(result.payment());
        List<String> history = result.history();
        assertTrue(history.indexOf("COMPENSATION_SUCCEEDED(reserve-inventory)") < history.indexOf("COMPENSATION_SUCCEEDED(create-order)"),
                history.toString());
    }

    @Test
    void orderSagaSampleInJdbcModeKeepsTheCompensatedSagaInTheDatabase() {
        try (HikariDataSource dataSource = SampleDatabase.open(null)) {
            JdbcSagaStore store = JdbcSagaStore.create(dataSource);
            OrderSagaSample.Outcome outcome = OrderSagaSample.run(true, store, out);
            assertEquals(SagaOutcome.COMPENSATED, outcome.result().outcome());
            SagaInstance stored = store.find(outcome.result().sagaId()).orElseThrow();
            assertEquals(SagaStatus.COMPENSATED, stored.status());
            assertEquals("order-saga-data", stored.dataType());
            assertTrue(outcome.effects().stream().anyMatch(e -> e.contains("released")));
        }
    }
}
