package io.streamsaga.kafka.internal;

import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.TopicPattern;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.producer.MockProducer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The member's own clients, as closing it releases them. */
class ConsumerLoopTest {

    @Test
    void closingAMemberGivesItsConsumerAndTransactionalProducerTheCloseTimeout() {
        // Builder.closeTimeout is how long closing waits; the member's consumer (leaving the group) and its
        // transactional producer were closed with a fixed 5 s instead, cut short under a longer close timeout.
        Duration closeTimeout = Duration.ofSeconds(30);
        RecordingConsumer consumer = new RecordingConsumer();
        RecordingProducer producer = new RecordingProducer();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, null, new ThreadLocal<>(), Duration.ofMillis(100),
                Duration.ofSeconds(1), closeTimeout, Set.of(), Map.of());

        loop.close();

        assertEquals(Optional.of(closeTimeout), consumer.closedWith);
        assertEquals(closeTimeout, producer.closedWith);
    }

    private static final class RecordingConsumer extends MockConsumer<String, byte[]> {
        volatile Optional<Duration> closedWith;

        RecordingConsumer() {
            super("earliest");
        }

        @Override
        public void close(CloseOptions options) {
            closedWith = options.timeout();
            super.close(options);
        }
    }

    private static final class RecordingProducer extends MockProducer<String, byte[]> {
        volatile Duration closedWith;

        @Override
        public void close(Duration timeout) {
            closedWith = timeout;
            super.close(timeout);
        }
    }
}
