package io.streamsaga.samples.kafka;

import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KafkaOrderSagaSampleTest {
    private static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() {
        KafkaMicroservicesSample.quietKafkaLogs();
        broker = EmbeddedKafkaBroker.start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @Test
    void orderSagaCompletesWithItsParticipantsOnKafka() throws Exception {
        KafkaOrderSagaSample.Outcome outcome = KafkaOrderSagaSample.run(broker.bootstrapServers(), false, quiet());
        assertTrue(outcome.result().isCompleted(), outcome.result().toString());
        assertTrue(outcome.result().data().paymentId().startsWith("pay-order-"));
        assertEquals(2, outcome.effects().size(), outcome.effects().toString());
    }

    @Test
    void declinedPaymentReleasesTheInventoryThenCancelsTheOrder() throws Exception {
        KafkaOrderSagaSample.Outcome outcome = KafkaOrderSagaSample.run(broker.bootstrapServers(), true, quiet());
        assertTrue(outcome.result().isCompensated(), outcome.result().toString());
        assertTrue(outcome.effects().get(0).startsWith("order created"));
        assertTrue(outcome.effects().get(1).startsWith("inventory reserved"));
        // the release is awaited (its reply) before the order is cancelled
        assertTrue(outcome.effects().get(2).startsWith("inventory released"), outcome.effects().toString());
        assertEquals("order cancelled " + outcome.result().data().orderId(), outcome.effects().get(3));
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    }
}
