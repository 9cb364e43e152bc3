package io.streamsaga.samples.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.samples.saga.OrderSagaSample.OrderData;
import io.streamsaga.samples.saga.OrderSagaSample.Outcome;
import io.streamsaga.samples.saga.OrderSagaSample.Services;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OrderSagaSampleTest {

    @Test
    void happyPathCreatesReservesChargesAndShips() {
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        Outcome outcome = OrderSagaSample.run(false, new PrintStream(printed, true, StandardCharsets.UTF_8));

        assertTrue(outcome.result().isCompleted());
        assertEquals(4, outcome.effects().size());
        assertTrue(outcome.effects().get(3).contains("scheduled shipping"), outcome.effects().toString());
        assertTrue(outcome.timeline().contains("saga completed"));
        assertTrue(printed.toString(StandardCharsets.UTF_8).contains("sequenceDiagram"));
    }

    @Test
    void declinedPaymentReleasesTheInventoryThenCancelsTheOrder() {
        Outcome outcome = OrderSagaSample.run(true, new PrintStream(OutputStream.nullOutputStream()));

        assertTrue(outcome.result().isCompensated());
        assertEquals("process-payment", outcome.result().failure().step());
        assertEquals("payment declined for " + outcome.result().data().orderId(), outcome.result().failure().message());
        List<String> effects = outcome.effects();
        assertTrue(effects.get(3).contains("released"), effects.toString());
        assertTrue(effects.get(4).contains("cancelled"), effects.toString());
        assertEquals(5, effects.size());
        assertTrue(outcome.timeline().indexOf("  compensated reserve-inventory") < outcome.timeline().indexOf("  compensated create-order"));
        String diagram = outcome.sequenceDiagram();
        assertTrue(diagram.contains("process_payment--xO: failed"), diagram);
        assertTrue(diagram.indexOf("O->>reserve_inventory: compensate") < diagram.indexOf("O->>create_order: compensate"), diagram);
    }

    @Test
    void orderSagaKeepsItsInvariantsAtEveryFailurePointAndCrash() {
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        ExplorationReport report = SagaCrashExplorer.forSaga(env -> new Services(false, quiet), OrderSagaSample::definition,
                        new OrderData("bob", List.of("cup"), 500, null, null, null))
                .invariant((services, run) -> {
                    List<String> effects = services.effects();
                    long done = effects.stream().filter(e -> e.contains("created") || e.contains("reserved")
                            || e.contains("charged")).count();
                    long undone = effects.stream().filter(e -> e.contains("cancelled") || e.contains("released")
                            || e.contains("refunded")).count();
                    if (run.status() == SagaStatus.COMPENSATED) {
                        assertEquals(done, undone, "every effect undone exactly once: " + effects);
                    } else {
                        assertEquals(0, undone, effects.toString());
                    }
                })
                .explore();
        assertTrue(report.crashScenarios() > 0);
    }
}
