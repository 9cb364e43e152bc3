package io.streamsaga.samples.kafka;

import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KafkaMicroservicesSampleTest {

    @Test
    void everyOrderIsPaidAndCountedByAnalyticsOverKafka() throws Exception {
        KafkaMicroservicesSample.quietKafkaLogs();
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start();
             PrintStream out = new PrintStream(printed, true, StandardCharsets.UTF_8)) {
            KafkaMicroservicesSample.Result result = KafkaMicroservicesSample.run(broker.bootstrapServers(), 3, true, out);
            assertEquals(new KafkaMicroservicesSample.Result(3, 3, 3, 600, 3), result);
        }
        assertTrue(printed.toString(StandardCharsets.UTF_8).contains("[summary]   done"));
    }
}
