package io.streamsaga.samples.patterns;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PatternSamplesTest {
    private final ByteArrayOutputStream output = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(output, true, StandardCharsets.UTF_8);

    @Test
    void idempotencySamplePublishesOnceAndChargesOnce() {
        IdempotencySample.Result result = IdempotencySample.run(out);
        assertEquals(1, result.published());
        assertEquals(1, result.skippedSends());
        assertEquals(List.of("o-1"), result.charged());
        assertEquals(1, result.duplicatesCounted());
    }

    @Test
    void splitterSampleMarksEveryPartAndTheAggregatorReassemblesTheOrder() {
        for (boolean stream : new boolean[] {false, true}) {
            SplitterSample.Result result = SplitterSample.run(stream, out);
            assertEquals(4, result.parts().size());
            assertEquals(1, result.parts().stream().filter(p -> p.last()).count());
            assertEquals(stream ? 1 : 4, result.parts().stream().filter(p -> p.size().isPresent()).count());
            assertEquals(3, result.reassembledItems());
        }
    }

    @Test
    void claimCheckSampleSendsAReferenceAndCleansUp(@TempDir Path dir) {
        ClaimCheckSample.Result result = ClaimCheckSample.run(dir.resolve("payloads"), out);
        assertTrue(result.payloadBytes() > 1024 * 1024);
        assertTrue(result.wireBytes() < 1024);
        assertEquals(List.of("billing", "shipping"), result.receivedBy().stream().sorted().toList());
        assertTrue(result.filesBefore() >= 1);
        assertEquals(0, result.filesAfter());
    }

    /** What the documented command runs: it ends without an error, its store's directory removed. */
    @Test
    void claimCheckSampleMainRemovesItsStoreDirectoryWithTheStoresLockFile() {
        assertDoesNotThrow(() -> ClaimCheckSample.main(new String[0]));
    }

    @Test
    void orderAggregatorSampleCompletesTheOrder() {
        OrderAggregatorSample.Result result = OrderAggregatorSample.run(false, out);
        assertEquals(1, result.completed().size());
        assertEquals(new OrderAggregatorSample.OrderCompleted("o-1", "u-9", "pay-3", true), result.completed().get(0));
        assertTrue(result.deadLetteredTypes().isEmpty());
    }

    @Test
    void orderAggregatorSampleDeadLettersAnOrderWhosePaymentNeverCame() {
        OrderAggregatorSample.Result result = OrderAggregatorSample.run(true, out);
        assertTrue(result.completed().isEmpty());
        assertEquals(List.of("inventory-reserved", "order-created"), result.deadLetteredTypes().stream().sorted().toList());
    }

    @Test
    void gatewayRoutingSampleRoutesKnownTopicsAndDeadLettersTheRest() {
        GatewayRoutingSample.Result result = GatewayRoutingSample.run(false, out);
        assertEquals(List.of("inventory-updated", "order-created", "payment-processed"), result.routed().stream().sorted().toList());
        assertEquals(List.of("user-registered"), result.deadLetteredTopics());
        assertEquals(1, result.unmatchedCounted());

        GatewayRoutingSample.Result dropped = GatewayRoutingSample.run(true, out);
        assertEquals(3, dropped.routed().size());
        assertTrue(dropped.deadLetteredTopics().isEmpty());
        assertEquals(1, dropped.unmatchedCounted());
        assertFalse(output.toString(StandardCharsets.UTF_8).isEmpty());
    }
}
