package io.streamsaga.kafka.internal;

import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void aTransactionCommitThatTimesOutIsRetriedAndTheMemberGoesOn() {
        // commitTransaction fails with a TimeoutException after the producer's max.block.ms (which docs/kafka.md
        // suggests lowering) while the commit may still complete; Kafka then refuses any other operation than
        // retrying it (abortTransaction throws IllegalStateException). The loop aborted, and that exception,
        // not a KafkaException, ended the member's thread for good.
        TopicPartition partition = new TopicPartition("orders", 0);
        MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest");
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> {
            consumer.rebalance(List.of(partition));
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0, "k",
                    sent.value(), sent.headers(), Optional.empty()));
        });
        CommitTimingOutOnceProducer producer = new CommitTimingOutOnceProducer();
        producer.initTransactions();
        AtomicInteger handled = new AtomicInteger();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handled.incrementAndGet(), consumer, producer, new TransactionalProducers() {
                    @Override
                    public org.apache.kafka.clients.producer.Producer<String, byte[]> create() {
                        throw new UnsupportedOperationException("one producer is enough");
                    }

                    @Override
                    public Duration transactionTimeout() {
                        return Duration.ofMinutes(1);
                    }

                    @Override
                    public boolean abortedForTimeout() {
                        return false;
                    }
                }, new ThreadLocal<>(),
                Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(5), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> producer.commits() > 0 || !loop.isRunning());
            assertTrue(loop.isRunning(), "the member goes on");
            assertEquals(1, producer.commits());
            assertEquals(List.of(Map.of(partition, new OffsetAndMetadata(1))), producer.consumerGroupOffsetsHistory()
                    .stream().flatMap(byGroup -> byGroup.values().stream()).toList(), "the offsets committed once");
            assertEquals(1, handled.get(), "the committed batch is not handled again");
        } finally {
            loop.close();
        }
    }

    /** Its first commit times out, as after max.block.ms, and then only a retried commit is allowed. */
    private static final class CommitTimingOutOnceProducer extends MockProducer<String, byte[]> {
        private boolean timedOut;
        private boolean commitPending;

        @Override
        public synchronized void commitTransaction() {
            if (!timedOut) {
                timedOut = true;
                commitPending = true;
                throw new TimeoutException("Timeout expired after 200ms while awaiting EndTxn(true)");
            }
            commitPending = false;
            super.commitTransaction();
        }

        /** The commits that went through, read under the producer's lock (the loop thread commits). */
        synchronized long commits() {
            return commitCount();
        }

        @Override
        public synchronized void abortTransaction() {
            if (commitPending) {
                throw new IllegalStateException("Cannot attempt operation `abortTransaction` because the previous"
                        + " call to `commitTransaction` timed out and must be retried");
            }
            super.abortTransaction();
        }
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
