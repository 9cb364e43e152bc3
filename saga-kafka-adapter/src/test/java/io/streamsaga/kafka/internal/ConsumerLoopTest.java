package io.streamsaga.kafka.internal;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.PendingDelivery;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetCommitCallback;
import org.apache.kafka.clients.consumer.RetriableCommitFailedException;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
                Duration.ofSeconds(1), closeTimeout, Duration.ofSeconds(30), Set.of(), Map.of());

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
        MockConsumer<String, byte[]> consumer = withRecordsAt(new MockConsumer<>("earliest"), partition, 0);
        CommitTimingOutOnceProducer producer = new CommitTimingOutOnceProducer();
        producer.initTransactions();
        AtomicInteger handled = new AtomicInteger();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handled.incrementAndGet(), consumer, producer, oneProducer(), new ThreadLocal<>(),
                Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(5), Duration.ofSeconds(30),
                Set.of(), Map.of());
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

    @Test
    void withPublishesAwaitedPerBatchTheCommitStopsAtTheFirstDeliveryWhoseRestFailedAndItsPartitionGoesBackToIt() {
        // awaitPublishesPerBatch: the batch's records are handled first, their deferred rests finished after, in
        // offset order; the one at offset 1 fails (its publish failed, the bus retries it later), so nothing past
        // it is committed and the partition is sought back to it
        TopicPartition partition = new TopicPartition("orders", 0);
        MockConsumer<String, byte[]> consumer = withRecordsAt(new MockConsumer<>("earliest"), partition, 0, 1, 2);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<Long> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<Long> finished = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, record -> {
            handled.add(record.offset());
            assertTrue(deferrals.get().defer(() -> {
                finished.add(record.offset());
                if (record.offset() == 1) {
                    throw new RedeliverLater(Duration.ofMinutes(10), new IllegalStateException("publish failed"));
                }
            }));
        }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(5),
                Duration.ofSeconds(30), Set.of(), Map.of(), System::nanoTime, deferrals);
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> new OffsetAndMetadata(1).equals(consumer.committed(Set.of(partition)).get(partition)));
            assertEquals(List.of(0L, 1L, 2L), handled, "the batch was handled before its rests were finished");
            assertEquals(List.of(0L, 1L), finished, "in offset order, none after the one that failed");
            assertEquals(1L, consumer.position(partition), "sought back to the record whose rest failed");
            assertEquals(Set.of(partition), consumer.paused(), "waiting for its redelivery");
        } finally {
            loop.close(); // its final commit past the failed record: KafkaBatchPublishWaitTest, on a real broker
        }
    }

    @Test
    void withPublishesAwaitedPerBatchAHandlerFailureAfterDeferredDeliveriesCommitsUpToItOnceTheyFinished() {
        // the records before the one whose handler threw finish first; the commit stops at that record, which waits
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithRecordsAt(partition, 0, 1, 2);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<Long> finished = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = deferringLoop(consumer, deferrals, Duration.ofSeconds(5), record -> {
            if (record.offset() == 2) {
                throw new RedeliverLater(Duration.ofMinutes(10), new IllegalStateException("handler failed"));
            }
            assertTrue(deferrals.get().defer(() -> finished.add(record.offset())));
        });
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> Set.of(partition).equals(consumer.paused())); // waiting for its redelivery
            assertEquals(List.of(0L, 1L), finished);
            assertEquals(2L, consumer.position(partition), "sought back to the record whose handler threw");
        } finally {
            loop.close();
        }
        assertEquals(Map.of(partition, new OffsetAndMetadata(2)), consumer.committedAtClose);
    }

    @Test
    void withPublishesAwaitedPerBatchAFailedDeferredDeliveryBeforeAFailedHandlerTakesThePartitionBackToItself() {
        // offset 0's rest fails and offset 2's handler threw: the partition goes back to 0, nothing past it committed
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithRecordsAt(partition, 0, 1, 2);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<Long> finished = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = deferringLoop(consumer, deferrals, Duration.ofSeconds(5), record -> {
            if (record.offset() == 2) {
                throw new RedeliverLater(Duration.ofMinutes(10), new IllegalStateException("handler failed"));
            }
            assertTrue(deferrals.get().defer(() -> {
                finished.add(record.offset());
                if (record.offset() == 0) {
                    throw new RedeliverLater(Duration.ofMinutes(10), new IllegalStateException("publish failed"));
                }
            }));
        });
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> Set.of(partition).equals(consumer.paused()));
            assertEquals(List.of(0L), finished, "none finished after the one that failed");
            assertEquals(0L, consumer.position(partition), "sought back to the record whose rest failed");
        } finally {
            loop.close();
        }
        assertEquals(Map.of(partition, new OffsetAndMetadata(0)), consumer.committedAtClose, "nothing past offset 0");
    }

    @Test
    void withPublishesAwaitedPerBatchClosingWhileADeferredDeliveryWaitsCommitsOnlyTheOnesFinishedBeforeIt()
            throws InterruptedException {
        // close() interrupts the wait for offset 1's publishes (after closeTimeout): 0 finished, 1 and 2 did not
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithRecordsAt(partition, 0, 1, 2);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<Long> finished = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch waiting = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        ConsumerLoop loop = deferringLoop(consumer, deferrals, Duration.ofMillis(200), record ->
                assertTrue(deferrals.get().defer(() -> {
                    if (record.offset() == 1) {
                        waiting.countDown();
                        never.await();
                    }
                    finished.add(record.offset());
                })));
        loop.start("streamsaga-kafka-billing-0");
        waiting.await();

        loop.close();

        loop.finished().toCompletableFuture().join();
        assertEquals(List.of(0L), finished);
        assertEquals(Map.of(partition, new OffsetAndMetadata(1)), consumer.committedAtClose,
                "the final commit stops at the record whose publishes were not awaited");
    }

    @Test
    void withPublishesAwaitedPerBatchALaterRecordOfTheBatchKeepsItsAttemptsWhenAnEarlierOnesFailedPublishSeeksBack() {
        // offset 1's publish is in flight when its handler returns; offset 3's handler fails (attempt 1) and fails
        // offset 1's publish; finishing the batch, offset 1 fails too and the partition goes back to it. The bus kept
        // one waiting record per partition, so offset 1's entry replaced offset 3's, which restarted at attempt 1:
        // three attempts under a policy of two
        TopicPartition partition = new TopicPartition("orders", 0);
        RereadingConsumer consumer = new RereadingConsumer(partition, 5);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        CompletableFuture<RecordPosition> firstPublish = new CompletableFuture<>();
        List<Message> deadLetters = new java.util.concurrent.CopyOnWriteArrayList<>();
        Transport transport = finishingLaterOn(consumer, deferrals, List.of(firstPublish), deadLetters);
        Map<Long, List<Integer>> attempts = new java.util.concurrent.ConcurrentHashMap<>();
        try (EventBus bus = EventBus.builder(transport)
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).build()) {
            bus.subscribe("billing", "orders", Message.class, (order, ctx) -> {
                attempts.computeIfAbsent(ctx.offset(), offset -> new java.util.concurrent.CopyOnWriteArrayList<>())
                        .add(ctx.attempt());
                if (ctx.offset() == 1) {
                    bus.publish(Message.builder("payments").key("k").type("payment").payload(new byte[0]).build());
                } else if (ctx.offset() == 3) {
                    firstPublish.completeExceptionally(new PublishException("payments", "broker unavailable", null, true));
                    throw new IllegalStateException("handler failed");
                }
            });

            await().until(() -> !deadLetters.isEmpty());
        }
        assertEquals(List.of(1, 2), attempts.get(1L), "offset 1: its publish failed once, then it was handled");
        assertEquals(List.of(1, 2), attempts.get(3L), "offset 3: the policy's two attempts, not restarted by the seek-back");
        assertEquals(1, deadLetters.size());
        assertEquals("2", deadLetters.get(0).headers().get(MessageHeaders.DLT_ATTEMPTS));
    }

    @Test
    void withPublishesAwaitedPerBatchARetryFinishedLaterThatAnEarlierRecordsFailureLeavesUnfinishedIsMadeAgainAsItself() {
        // offset 3 failed (attempt 1); its retry, attempt 2, returns with its publish in flight, but offset 1's publish
        // fails again and the partition goes back to it before offset 3's rest is finished: attempt 2's outcome is
        // unknown, so offset 3 is handled again as attempt 2, not as a first attempt nor a third
        TopicPartition partition = new TopicPartition("orders", 0);
        RereadingConsumer consumer = new RereadingConsumer(partition, 5);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<CompletableFuture<RecordPosition>> pending = List.of(new CompletableFuture<>(), new CompletableFuture<>(),
                new CompletableFuture<>()); // offset 1's first two publishes, offset 3's first
        List<Message> deadLetters = new java.util.concurrent.CopyOnWriteArrayList<>();
        Map<Long, List<Integer>> attempts = new java.util.concurrent.ConcurrentHashMap<>();
        try (EventBus bus = EventBus.builder(finishingLaterOn(consumer, deferrals, pending, deadLetters))
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build()) {
            bus.subscribe("billing", "orders", Message.class, (order, ctx) -> {
                List<Integer> made = attempts.computeIfAbsent(ctx.offset(),
                        offset -> new java.util.concurrent.CopyOnWriteArrayList<>());
                made.add(ctx.attempt());
                if (ctx.offset() == 1) {
                    bus.publish(Message.builder("payments").key("k").type("payment").payload(new byte[0]).build());
                } else if (ctx.offset() == 3) {
                    if (made.size() <= 2) { // offset 1's publish in flight (of its attempt 1, then 2) fails
                        pending.get(made.size() - 1).completeExceptionally(
                                new PublishException("payments", "broker unavailable", null, true));
                    }
                    if (made.size() == 1) {
                        throw new IllegalStateException("handler failed");
                    }
                    bus.publish(Message.builder("payments").key("k").type("payment").payload(new byte[0]).build());
                }
            });

            await().until(() -> new OffsetAndMetadata(5).equals(consumer.committed(Set.of(partition)).get(partition)));
        }
        assertEquals(List.of(1, 2, 3), attempts.get(1L));
        assertEquals(List.of(1, 2, 2), attempts.get(3L), "attempt 2, left unfinished, made again");
        assertTrue(deadLetters.isEmpty(), deadLetters.toString());
    }

    @Test
    void withPublishesAwaitedPerBatchARetryLeftUnfinishedAgainAndAgainGetsNoMoreAttemptsThanThePolicyAllows() {
        // every publish fails (offsets 3 and 4 fail those in flight); offset 3's first handling throws, so its
        // retry, attempt 2, is left unfinished while offset 1's publish fails, until offset 1 is dead-lettered after
        // its three attempts: made again as attempt 2 each time, offset 3 then fails attempts 2 and 3 itself and is
        // dead-lettered after three too, never a fourth (each seek back past it is a counted failure of offset 1)
        TopicPartition partition = new TopicPartition("orders", 0);
        RereadingConsumer consumer = new RereadingConsumer(partition, 5);
        ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals = new ThreadLocal<>();
        List<CompletableFuture<RecordPosition>> pending = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            pending.add(new CompletableFuture<>());
        }
        AtomicInteger published = new AtomicInteger();
        List<Message> deadLetters = new java.util.concurrent.CopyOnWriteArrayList<>();
        Map<Long, List<Integer>> attempts = new java.util.concurrent.ConcurrentHashMap<>();
        try (EventBus bus = EventBus.builder(finishingLaterOn(consumer, deferrals, pending, deadLetters))
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build()) {
            bus.subscribe("billing", "orders", Message.class, (order, ctx) -> {
                List<Integer> made = attempts.computeIfAbsent(ctx.offset(),
                        offset -> new java.util.concurrent.CopyOnWriteArrayList<>());
                made.add(ctx.attempt());
                if (ctx.offset() == 3 || ctx.offset() == 4) { // the publishes in flight fail
                    for (int i = 0; i < published.get(); i++) {
                        pending.get(i).completeExceptionally(new PublishException("payments", "broker unavailable",
                                null, true));
                    }
                }
                if (ctx.offset() == 3 && made.size() == 1) {
                    throw new IllegalStateException("handler failed");
                }
                if (ctx.offset() == 1 || ctx.offset() == 3) {
                    published.incrementAndGet();
                    bus.publish(Message.builder("payments").key("k").type("payment").payload(new byte[0]).build());
                }
            });

            await().until(() -> new OffsetAndMetadata(5).equals(consumer.committed(Set.of(partition)).get(partition)));
        }
        assertEquals(List.of(1, 2, 3), attempts.get(1L));
        assertEquals(List.of(1, 2, 2, 3), attempts.get(3L), "attempt 2, left unfinished once, made again; no fourth");
        assertEquals(List.of("1:3", "3:3"), deadLetters.stream().map(deadLetter -> deadLetter.headers()
                .get(MessageHeaders.DLT_ORIGINAL_OFFSET) + ":" + deadLetter.headers().get(MessageHeaders.DLT_ATTEMPTS))
                .toList(), "each dead-lettered after the policy's three attempts");
    }

    /**
     * A transport whose subscriptions run a plain-mode loop over {@code consumer}, the handlers' publishes awaited per
     * batch through {@code deferrals}, as Kafka's with awaitPublishesPerBatch: its sends to payments return
     * {@code pending} in turn, then completed stages; it records dead letters in {@code deadLetters}.
     */
    private static Transport finishingLaterOn(RereadingConsumer consumer,
                                              ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals,
                                              List<CompletableFuture<RecordPosition>> pending, List<Message> deadLetters) {
        return new ForwardingTransport(InMemoryTransport.builder().build()) {
            private final AtomicInteger sends = new AtomicInteger();

            @Override
            public boolean redeliversPerPartition() {
                return true;
            }

            @Override
            public boolean mayFinishLater() {
                return true;
            }

            @Override
            public boolean finishLater(PendingDelivery rest) {
                return deferrals.get() != null && deferrals.get().defer(rest);
            }

            @Override
            public CompletionStage<RecordPosition> send(Message message) {
                if (message.topic().equals("payments") && sends.get() < pending.size()) {
                    return pending.get(sends.getAndIncrement());
                }
                if (message.topic().equals("orders" + MessageHeaders.DEAD_LETTER_SUFFIX)) {
                    deadLetters.add(message);
                }
                return CompletableFuture.completedFuture(new RecordPosition(message.topic(), 0, 0));
            }

            @Override
            public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
                ConsumerLoop loop = new ConsumerLoop(group, pattern, start, handler, consumer, null, null,
                        new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(5),
                        Duration.ofSeconds(30), Set.of(), Map.of(), System::nanoTime, deferrals);
                loop.start("streamsaga-kafka-billing-0");
                return new Subscription() {
                    @Override
                    public String group() {
                        return group;
                    }

                    @Override
                    public TopicPattern pattern() {
                        return pattern;
                    }

                    @Override
                    public boolean isActive() {
                        return loop.isRunning();
                    }

                    @Override
                    public void close() {
                        loop.close();
                    }
                };
            }
        };
    }

    /**
     * A consumer of one partition holding records at offsets 0 to {@code end - 1}, which its polls return from the
     * partition's position on while it is assigned and not paused, so that a seek back reads records again (a
     * MockConsumer returns each record added once).
     */
    private static final class RereadingConsumer extends MockConsumer<String, byte[]> {
        private final TopicPartition partition;
        private final long end;
        private final ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());

        RereadingConsumer(TopicPartition partition, long end) {
            super("earliest");
            this.partition = partition;
            this.end = end;
            updateBeginningOffsets(Map.of(partition, 0L));
            schedulePollTask(() -> rebalance(List.of(partition)));
        }

        @Override
        public synchronized ConsumerRecords<String, byte[]> poll(Duration timeout) {
            if (assignment().contains(partition) && !paused().contains(partition)) {
                // what the previous poll returned is drained: add the records from the position again
                for (long offset = position(partition); offset < end; offset++) {
                    addRecord(new ConsumerRecord<>("orders", partition.partition(), offset, 0L, TimestampType.CREATE_TIME,
                            1, 0, "k", sent.value(), sent.headers(), Optional.empty()));
                }
            }
            return super.poll(timeout);
        }
    }

    /** A plain-mode loop over {@code consumer} whose handlers' publishes are awaited per batch through {@code deferrals}. */
    private static ConsumerLoop deferringLoop(WakingConsumer consumer,
                                              ThreadLocal<ConsumerLoop.DeferredDeliveries> deferrals,
                                              Duration closeTimeout, RecordHandler handler) {
        return new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, handler, consumer, null,
                null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), closeTimeout,
                Duration.ofSeconds(30), Set.of(), Map.of(), System::nanoTime, deferrals);
    }

    @Test
    void closingWhileAHandlerRunsCommitsTheRecordItHandled() throws InterruptedException {
        // close() wakes the consumer; a member inside its handler then ends without polling again, so the
        // wakeup was still pending at the final commitSync, which threw WakeupException (logged at debug
        // only): the handled record was not committed and the group's next member handled it again, where
        // close promises to commit what was handled. Here the batch's async commit failed, as it may.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        CountDownLatch inHandler = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handleFirstUntilWokenUp(record, inHandler, consumer), consumer, null, null,
                new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(30),
                Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        inHandler.await();
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(1)), consumer.committedAtClose,
                "the offset after the handled record is committed");
    }

    @Test
    void closingWhileAHandlerRunsCommitsTheRecordItHandledInTheBatchTransaction() throws InterruptedException {
        // Exactly-once: the handled record's offset goes into the batch's transaction, which commits on close
        // (the consumer's pending wakeup does not reach it).
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        MockProducer<String, byte[]> producer = new MockProducer<>();
        producer.initTransactions();
        CountDownLatch inHandler = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handleFirstUntilWokenUp(record, inHandler, consumer), consumer, producer,
                oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1),
                Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        inHandler.await();
        loop.close();

        assertEquals(List.of(Map.of(partition, new OffsetAndMetadata(1))), producer.consumerGroupOffsetsHistory()
                .stream().flatMap(byGroup -> byGroup.values().stream()).toList(),
                "the offset after the handled record is committed with the transaction");
    }

    @Test
    void closingAMemberWhoseHandlerOnlyAnInterruptStopsCommitsTheRecordsHandledBefore() throws InterruptedException {
        // The handler of offset 1 ignores the stop: close interrupts it after closeTimeout; offset 0 was handled.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        CountDownLatch inSecondHandler = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> {
                    if (record.offset() == 1) {
                        inSecondHandler.countDown();
                        never.await();
                    }
                }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1),
                Duration.ofMillis(200), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        inSecondHandler.await();

        loop.close();

        loop.finished().toCompletableFuture().join();
        assertEquals(Map.of(partition, new OffsetAndMetadata(1)), consumer.committedAtClose);
    }

    @ParameterizedTest(name = "interrupted by close: {0}")
    @ValueSource(booleans = {false, true})
    void closingAMemberWhoseHandlerLeavesItsThreadInterruptedStillCommitsTheRecordsHandledBefore(boolean byClose)
            throws InterruptedException {
        // A handler can leave its thread interrupted while the member closes: its own interrupt, restored as it
        // returns after close() stopped the loop (and before close's interrupt, which comes after the close
        // timeout); or close's interrupt, restored as the bus restores it before passing the InterruptedException
        // on. Only an interrupt while running was cleared, so the flag failed the final commit (Kafka's network
        // client throws InterruptException on an interrupted thread) and the records handled were handled again.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> {
                    if (!byClose && record.offset() == 0) {
                        inHandler.countDown();
                        consumer.wokenUp.await(); // close() has stopped the loop
                        Thread.currentThread().interrupt();
                    } else if (byClose && record.offset() == 1) {
                        inHandler.countDown();
                        try {
                            never.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt(); // as the bus does
                            throw e;
                        }
                    }
                }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1),
                byClose ? Duration.ofMillis(200) : Duration.ofSeconds(20), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        inHandler.await();

        loop.close();

        loop.finished().toCompletableFuture().join();
        assertEquals(Map.of(partition, new OffsetAndMetadata(1)), consumer.committedAtClose);
    }

    @Test
    void closingAMemberFromInsideItsHandlerCommitsTheRecordItHandled() {
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        AtomicReference<ConsumerLoop> self = new AtomicReference<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> self.get().close(), consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        self.set(loop);
        loop.start("streamsaga-kafka-billing-0");

        loop.finished().toCompletableFuture().join();

        assertEquals(Map.of(partition, new OffsetAndMetadata(1)), consumer.committedAtClose);
    }

    @Test
    void closingDuringARebalanceCommitsTheRecordsHandledOnTheRevokedPartitions() throws InterruptedException {
        // close() lands while the member is in poll, in a rebalance that revokes its partition: the revoke
        // listener's commitSync threw the pending wakeup (logged as a warning), and the final commit no longer
        // covers those records (taken out of what is to commit), so the partition's next owner handled them again.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        CountDownLatch inRebalance = rebalanceOnceWokenUp(consumer, List.of(), () -> { });
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        inRebalance.await();
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(2)), consumer.committedAtClose,
                "the offset after the handled records is committed on revoke");
    }

    @Test
    void anExactlyOnceMemberEndsOnlyOnceTheOffsetsOfItsFinalTransactionAreCommitted() throws InterruptedException {
        // commitTransaction returns before the broker has written the transaction's markers, and until then it
        // lists none of its offsets. The member's thread ended at once, so KafkaTransport.consumerGroups, which
        // answers for a closed subscription's group by a listing made after that, missed a group whose only
        // commits were that transaction. Here the markers are "written" when the test says so.
        TopicPartition partition = new TopicPartition("orders", 0);
        MarkersPendingConsumer consumer = withRecordsAt(new MarkersPendingConsumer(), partition, 0);
        MockProducer<String, byte[]> producer = new MockProducer<>();
        producer.initTransactions();
        AtomicReference<ConsumerLoop> self = new AtomicReference<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> self.get().close(), consumer, producer, oneProducer(), new ThreadLocal<>(),
                Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30),
                Set.of(), Map.of());
        self.set(loop);
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> consumer.asked.getCount() == 0 || loop.finished().toCompletableFuture().isDone());
        assertEquals(0, consumer.asked.getCount(), "the member asks for its final transaction's offsets");
        assertEquals(Set.of(partition), consumer.askedFor);
        assertEquals(1, producer.commitCount(), "after its final commit");
        assertFalse(loop.finished().toCompletableFuture().isDone(), "the member has not ended while they are pending");
        consumer.markersWritten.countDown();
        loop.finished().toCompletableFuture().join();
    }

    @ParameterizedTest(name = "wakeup met in committed: {0}")
    @ValueSource(booleans = {false, true})
    void closingDuringTheAssignmentOfALatestGroupStillCommitsItsStart(boolean inCommitted) throws InterruptedException {
        // close() lands while the member is in poll, in the rebalance that assigns it a partition its group has
        // no offset for: the start commit met the pending wakeup (logged as a warning), or before it the read
        // of the committed offsets did (the assignment left unfinished), so the group had no start and its next
        // member started at a newer end, skipping what was published after this subscribe returned.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.wakeupInCommitted = inCommitted;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        CountDownLatch inRebalance = rebalanceOnceWokenUp(consumer, List.of(partition), () -> { });
        ConsumerLoop loop = latestMember(consumer, partition);
        loop.start("streamsaga-kafka-billing-0");

        inRebalance.await();
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose,
                "the start read when subscribing is committed");
    }

    @Test
    void closingDuringTheAssignmentPositionsItAgainWaitingNoLongerThanAPoll() throws InterruptedException {
        // close() lands in the rebalance that assigns the member a partition its group has no offset for, and the
        // assignment's read of the committed offsets throws the wakeup. The rebalance listener positioned the
        // partition again as the assignment does, each read waiting up to the consumer's default.api.timeout.ms
        // (60 s): against a coordinator that stopped answering, closing waited that long (or until its interrupt,
        // after closeTimeout). That attempt is part of closing, so it now waits as closing's other attempt does.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.wakeupInCommitted = true;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        CountDownLatch inRebalance = rebalanceOnceWokenUp(consumer, List.of(partition), () -> { });
        ConsumerLoop loop = latestMember(consumer, partition);
        loop.start("streamsaga-kafka-billing-0");

        inRebalance.await();
        loop.close();

        assertEquals(List.of("default.api.timeout.ms", "PT0.01S"), consumer.committedReadWaits,
                "the assignment's read, cut short by the wakeup, then the read made again");
        assertEquals(List.of("PT0.01S"), consumer.positionWaits);
        assertEquals(List.of("PT0.01S"), consumer.commitWaits);
        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose,
                "the start read when subscribing is committed");
    }

    @Test
    void aRevokedPartitionIsForgottenByTheHandlerWhichMayMeetItAgainAfterAnotherMemberHadIt() {
        // The bus keeps, per partition, the step a too-large dead letter reached (payload, headers, key left out);
        // a partition revoked and later given back, after another member handled it or once its topic was created
        // again, met that step still kept, which could skip one the record's dead letter passes at now.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of()));
        List<String> forgotten = new java.util.concurrent.CopyOnWriteArrayList<>();
        RecordHandler handler = forgetting(forgotten);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                handler, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> !forgotten.isEmpty() || !loop.isRunning());
            assertEquals(List.of("orders-0"), forgotten);
        } finally {
            loop.close();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {4, 5})
    void aPartitionARebalanceRevokesIsForgottenOnlyWhenItIsNotGivenBackAtTheNextGeneration(int assignedAt)
            throws InterruptedException {
        // An eager assignor revokes every partition at every rebalance, also one it gives straight back, which no
        // other member had meanwhile: forgetting it there restarted a too-large dead letter's steps at each rebalance.
        // Given back at a later generation than the next, a rebalance this member was not in came between.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> {
            consumer.generation = 3;
            consumer.listener.onPartitionsRevoked(List.of(partition));
            consumer.generation = assignedAt;
            consumer.listener.onPartitionsAssigned(List.of(partition));
        });
        CountDownLatch rebalanced = new CountDownLatch(1);
        consumer.schedulePollTask(rebalanced::countDown);
        List<String> forgotten = new java.util.concurrent.CopyOnWriteArrayList<>();
        RecordHandler handler = forgetting(forgotten);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                handler, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            assertTrue(rebalanced.await(30, TimeUnit.SECONDS));
            assertEquals(assignedAt == 4 ? List.of() : List.of("orders-0"), forgotten);
        } finally {
            loop.close();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {4, 5})
    void aPartitionARebalanceGivesStraightBackKeepsWaitingForItsRecordsRedelivery(int assignedAt)
            throws InterruptedException {
        // Given straight back (the generation after its revoke), the partition keeps what the handler learnt of it
        // (the attempts, a too-large dead letter's step), but the revoke dropped its wait and its new assignment
        // started unpaused: the record asked to wait an hour was delivered again at once, so a group rebalancing
        // often used up its attempts without the policy's backoff. Given back later, the wait goes with the rest.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        ConsumerRecord<String, byte[]> record = new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                "k", sent.value(), sent.headers(), Optional.empty());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> consumer.addRecord(record));
        consumer.schedulePollTask(() -> revokeAtThreeAndAssignAt(assignedAt, consumer, partition, record));
        CountDownLatch rebalanced = new CountDownLatch(1);
        consumer.schedulePollTask(rebalanced::countDown);
        List<Long> delivered = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                r -> {
                    delivered.add(r.offset());
                    throw new RedeliverLater(Duration.ofHours(1), new IllegalStateException("down"));
                }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            assertTrue(rebalanced.await(30, TimeUnit.SECONDS));
            assertEquals(assignedAt == 4 ? List.of(0L) : List.of(0L, 0L), delivered,
                    assignedAt == 4 ? "not again before the hour it waits" : "again at once, its wait forgotten");
        } finally {
            loop.close();
        }
    }

    @Test
    void aPartitionARebalanceGivesStraightBackKeepsTheRemainderOfItsRedeliveryWaitNotAFreshOne()
            throws InterruptedException {
        // aPartitionARebalanceGivesStraightBackKeepsWaitingForItsRecordsRedelivery proves the wait is kept, not
        // that it keeps its deadline: re-armed afresh at the new assignment, a record asked to wait 10 minutes would
        // wait up to 16 here (6 before the rebalance, 10 after), and each rebalance of a busy group would push it back.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        ConsumerRecord<String, byte[]> record = new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                "k", sent.value(), sent.headers(), Optional.empty());
        java.util.concurrent.atomic.AtomicLong nanos = new java.util.concurrent.atomic.AtomicLong();
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> consumer.addRecord(record));
        consumer.schedulePollTask(() -> {
            nanos.addAndGet(Duration.ofMinutes(6).toNanos());
            revokeAtThreeAndAssignAt(4, consumer, partition, record);
        });
        consumer.schedulePollTask(() -> nanos.addAndGet(Duration.ofMinutes(5).toNanos())); // 11 minutes in
        consumer.schedulePollTask(() -> { }); // the loop resumes what is due before this poll, which returns the record
        CountDownLatch polledAfter = new CountDownLatch(1);
        consumer.schedulePollTask(polledAfter::countDown); // the record that poll returned has been handled
        List<Long> delivered = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                r -> {
                    delivered.add(r.offset());
                    throw new RedeliverLater(Duration.ofMinutes(10), new IllegalStateException("down"));
                }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of(),
                nanos::get);
        loop.start("streamsaga-kafka-billing-0");
        try {
            assertTrue(polledAfter.await(30, TimeUnit.SECONDS));
            assertEquals(List.of(0L, 0L), delivered, "delivered again once the 10 minutes asked for are over");
        } finally {
            loop.close();
        }
    }

    /** A rebalance revoking {@code partition} at generation 3 and assigning it again at {@code assignedAt}. */
    private static void revokeAtThreeAndAssignAt(int assignedAt, WakingConsumer consumer, TopicPartition partition,
                                                 ConsumerRecord<String, byte[]> record) {
        consumer.generation = 3;
        consumer.listener.onPartitionsRevoked(List.of(partition));
        consumer.resume(List.of(partition)); // KafkaConsumer's new assignment starts unpaused
        consumer.generation = assignedAt;
        consumer.listener.onPartitionsAssigned(List.of(partition));
        consumer.addRecord(record); // the broker still has it
    }

    @Test
    void anAssignmentWaitLongerThanTheMaximumDurationWaitsForTheAssignmentInsteadOfThrowing() throws InterruptedException {
        // KafkaSubscription.awaitAssignment(ChronoUnit.FOREVER.getDuration()), "wait however long it takes", threw
        // an ArithmeticException (long overflow) before waiting; a longer wait is now taken as the longest there is.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        assertTrue(loop.awaitAssignment(java.time.temporal.ChronoUnit.FOREVER.getDuration()));
        loop.close();
    }

    @Test
    void aPartitionAddedToATopicAfterALatestSubscribeIsReadFromItsBeginning() throws InterruptedException {
        // subscribe read the end of each partition the topic had; a partition added to the topic since (found at
        // the consumer's next metadata refresh, up to metadata.max.age.ms later) started at its end as of the
        // assignment, so what was published to it in between, all of it after subscribe returned, was skipped.
        TopicPartition before = new TopicPartition("orders", 0);
        TopicPartition added = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(before, 0L, added, 0L));
        consumer.updateEndOffsets(Map.of(before, 9L, added, 3L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(before, added)));
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30),
                Set.of("orders"), Map.of(before, 5L));
        loop.start("streamsaga-kafka-billing-0");

        assertTrue(loop.awaitAssignment(Duration.ofSeconds(30)));
        loop.close();

        assertEquals(Map.of(before, new OffsetAndMetadata(5), added, new OffsetAndMetadata(0)), consumer.committedAtClose,
                "the partition the topic did not have at subscribe starts at its beginning");
    }

    @Test
    void anAssignmentWhoseCommittedOffsetsKafkaCannotReadInTimeDoesNotStopTheMember() throws InterruptedException {
        // The assignment reads the group's committed offsets and resolves each partition's position with blocking
        // calls; one that Kafka cannot answer within default.api.timeout.ms (the coordinator moving, a broker
        // unreachable) throws a TimeoutException, which escaped the rebalance listener, out of poll, and ended the
        // member as an unexpected error: its partitions were no longer consumed. The partitions now wait, paused
        // (not read from where Kafka would start them), and are positioned again at the next poll.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.committedTimeouts.set(1);
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> {
            for (long offset : new long[] {3, 5}) { // 3 was published before the subscribe, 5 after
                consumer.addRecord(new ConsumerRecord<>("orders", 0, offset, 0L, TimestampType.CREATE_TIME, 1, 0,
                        "k", sent.value(), sent.headers(), Optional.empty()));
            }
        });
        CountDownLatch polledPast = new CountDownLatch(1);
        consumer.schedulePollTask(polledPast::countDown);
        List<Long> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST,
                record -> handled.add(record.offset()), consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30),
                Set.of("orders"), Map.of(partition, 5L));
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> polledPast.getCount() == 0 || !loop.isRunning());
        assertTrue(loop.isRunning(), "the member goes on");
        assertTrue(loop.awaitAssignment(Duration.ZERO), "the assignment completes once its partitions are positioned");
        loop.close();

        assertEquals(List.of(5L), handled, "the partition starts at the start subscribe read, not at its beginning");
        assertEquals(Map.of(partition, new OffsetAndMetadata(6)), consumer.committedAtClose);
    }

    @Test
    void aPartitionWhosePositionKafkaCannotTellAtTheAssignmentHoldsBackNoOtherPartition() throws InterruptedException {
        // The assignment resolves each assigned partition's position with a blocking call; when Kafka could not tell
        // one within default.api.timeout.ms (its leader unavailable, a validation or reset unanswered), every
        // partition of the assignment stayed paused, and each turn of the loop positioned them all again, waiting
        // that long again for it: the member consumed nothing, not even from the partitions whose leaders answered.
        // Only that partition waits now, paused, asked again at each turn without waiting, and resumes once told.
        TopicPartition flowing = new TopicPartition("orders", 0);
        TopicPartition leaderless = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(flowing, 0L, leaderless, 0L));
        consumer.unsettled = leaderless;
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(flowing, leaderless)));
        consumer.schedulePollTask(() -> {
            for (int partition = 0; partition < 2; partition++) {
                consumer.addRecord(new ConsumerRecord<>("orders", partition, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                        "k", sent.value(), sent.headers(), Optional.empty()));
            }
        });
        List<TopicPartition> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handled.add(new TopicPartition(record.message().topic(), record.partition())), consumer,
                null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(30),
                Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> handled.contains(flowing) || !loop.isRunning());
        assertEquals(List.of(flowing), handled, "the partition Kafka can position is consumed, the other one waits");
        assertFalse(loop.awaitAssignment(Duration.ZERO), "the assignment is not complete while one position is untold");
        consumer.unsettled = null; // its leader is back
        await().until(() -> handled.contains(leaderless) || !loop.isRunning());
        assertTrue(loop.awaitAssignment(Duration.ZERO), "the assignment completes once every position is told");
        loop.close();

        assertEquals(1, consumer.blockingPositionCallsOfUnsettled.get(), "waited for once, at the assignment");
        assertEquals(Map.of(flowing, new OffsetAndMetadata(1), leaderless, new OffsetAndMetadata(1)),
                consumer.committedAtClose);
    }

    @Test
    void positioningAnAssignmentAgainWaitsNoLongerThanAPollAndWarnsOnlyOnce() {
        // Each turn of the loop read the committed offsets of a postponed assignment again with the blocking
        // committed(..), up to default.api.timeout.ms (60 s by default), and warned each time: under cooperative
        // or KIP-848 assignment, where the member keeps its other partitions, they stalled that long every turn.
        // The assignment's own read blocks as before; each read again waits at most pollTimeout, and only the
        // first failure is a warning. Reads slf4j-simple's output (System.err).
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.committedTimeouts.set(3);
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        String logged = standardErrorOf(() -> {
            loop.start("streamsaga-kafka-billing-0");
            try {
                await().until(() -> assignmentComplete(loop) || !loop.isRunning());
            } finally {
                loop.close();
            }
        });
        assertEquals(List.of("default.api.timeout.ms", "PT0.01S", "PT0.01S", "PT0.01S"), consumer.committedReadWaits,
                "the assignment's read blocks, each read again waits at most pollTimeout");
        assertEquals(1, logged.split("could not position its assigned partitions", -1).length - 1, logged);
    }

    private static boolean assignmentComplete(ConsumerLoop loop) {
        try {
            return loop.awaitAssignment(Duration.ZERO);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void closingAMemberWhileItPositionsItsAssignmentAgainEndsItWithoutAnotherPoll() throws InterruptedException {
        // The assignment could not read the committed offsets, so the loop positions its partitions again before
        // its next poll; close() woke the consumer during that attempt, whose blocking read threw the wakeup and
        // so consumed it. The loop then polled once more, with no wakeup left to cut it short: up to pollTimeout,
        // and a rebalance in it ran the assignment's blocking reads again, so closing waited for them.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.committedTimeouts.set(1);
        consumer.committedAwaitsWakeup = true;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of("orders"), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        consumer.inCommittedAwaitingWakeup.await();
        loop.close();

        assertEquals(0, consumer.pollsAfterWakeup.get(), "no poll after close() woke the consumer");
    }

    @ParameterizedTest(name = "the read made again awaits the wakeup: {0}")
    @ValueSource(booleans = {true, false})
    void closingALatestMemberWhosePartitionWaitsToBePositionedAgainStillCommitsItsStart(boolean readAwaitsWakeup)
            throws InterruptedException {
        // The assignment could not read the committed offsets, so the partition waited to be positioned again;
        // close() landed in that read (which threw its wakeup) or in a poll between reads that kept failing, and
        // the member ended without committing its start. For a partition whose start subscribe did not commit (the
        // group had members, or the topic or partition is newer than the subscribe) the group's next member
        // started at the end as of its own subscribe, skipping what was published after this one returned.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.committedTimeouts.set(readAwaitsWakeup ? 1 : Integer.MAX_VALUE);
        consumer.committedAwaitsWakeup = readAwaitsWakeup;
        consumer.readsTimeOutUntilWokenUp = !readAwaitsWakeup;
        consumer.wakeupInCommitted = !readAwaitsWakeup; // wherever close() lands, the loop ends before another read
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = latestMember(consumer, partition);
        loop.start("streamsaga-kafka-billing-0");

        if (readAwaitsWakeup) {
            consumer.inCommittedAwaitingWakeup.await();
        } else {
            await().until(() -> consumer.committedReadWaits.size() >= 2 || !loop.isRunning()); // read again, failed
        }
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose,
                "the start read when subscribing is committed");
    }

    @Test
    void closingALatestMemberWhosePartitionsPositionKafkaTellsOnlyWithinAWaitStillCommitsItsStart() {
        // The assignment could not tell the partition's position (its leader unavailable, the seek's validation
        // or a reset unanswered), so it waited, its start to commit once told. Closing made one more attempt, but
        // asked for that position without waiting: KafkaConsumer's position(partition, Duration.ZERO) returns
        // only a position already valid when called, never one whose answer arrives meanwhile, and no poll drives
        // it any more. The start went uncommitted where a wait of pollTimeout, as documented, would have told it.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.unsettled = partition;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = latestMember(consumer, partition);
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> consumer.blockingPositionCallsOfUnsettled.get() == 1 || !loop.isRunning());
        consumer.aWaitTellsUnsettled = true; // Kafka answers now, within a wait
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose,
                "the start read when subscribing is committed");
    }

    @Test
    void aPartitionKafkaPositionsAsTheMemberClosesIsLoggedAsItsStartCommittedNotAsConsumedAgain() {
        // Closing's extra attempt told the position of a partition that waited for it and committed its start,
        // and the log said Kafka "now tells the positions of [orders-0], which are consumed again": nothing is
        // consumed after that, the member is ending. Reads slf4j-simple's output (System.err).
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.unsettled = partition;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        ConsumerLoop loop = latestMember(consumer, partition);

        String logged = standardErrorOf(() -> {
            loop.start("streamsaga-kafka-billing-0");
            await().until(() -> consumer.blockingPositionCallsOfUnsettled.get() == 1 || !loop.isRunning());
            consumer.aWaitTellsUnsettled = true; // Kafka answers now, within a wait
            loop.close();
        });

        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose);
        assertFalse(logged.contains("consumed again"), logged);
        assertTrue(logged.contains("as the member closes: Kafka now tells the positions of [orders-0];"
                + " the start subscribe read is committed on [orders-0]"), logged);
    }

    @Test
    void aPartitionKafkaCannotPositionAsTheMemberClosesIsNotLoggedAsPositionedAgainBeforeEachPoll()
            throws InterruptedException {
        // close() lands in the assignment, whose read threw the wakeup, and Kafka does not answer the read made
        // again either: that was logged as partitions that "stay paused and are positioned again before each
        // poll", though the member was ending and polls no more; closing's warning that it could not position them
        // says what happens.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.wakeupInCommitted = true;
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        CountDownLatch inRebalance = rebalanceOnceWokenUp(consumer, List.of(partition),
                () -> consumer.committedTimeouts.set(Integer.MAX_VALUE)); // the coordinator stops answering
        ConsumerLoop loop = latestMember(consumer, partition);

        String logged = standardErrorOf(() -> {
            loop.start("streamsaga-kafka-billing-0");
            inRebalance.await();
            loop.close();
        });

        assertFalse(logged.contains("positioned again before each poll"), logged);
        assertEquals(1, logged.split("closes before Kafka could position \\[orders-0\\]", -1).length - 1, logged);
    }

    /** What slf4j-simple logs (to System.err) while {@code action} runs. */
    private static String standardErrorOf(org.junit.jupiter.api.function.Executable action) {
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            action.execute();
        } catch (Throwable e) {
            throw new AssertionError(e);
        } finally {
            System.setErr(original);
        }
        return captured.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    @Test
    void closingALatestMemberWhosePartitionWaitsToBePositionedAgainCommitsTheRecordsItHandledFirst() {
        // Closing made its extra attempt to position a partition waiting to be positioned again (to commit its
        // start) before the final commit of the records the member had handled. Each read of that attempt may
        // wait pollTimeout: where Kafka did not answer and that is longer than the close timeout, close()
        // interrupted the attempt, and the interrupt, still set, failed the final commit too: records handled
        // on the member's other partitions were handled again by the group's next member.
        TopicPartition flowing = new TopicPartition("orders", 0);
        TopicPartition waiting = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.wakeupInCommitted = true;
        consumer.updateBeginningOffsets(Map.of(flowing, 0L, waiting, 0L));
        consumer.updateEndOffsets(Map.of(flowing, 0L, waiting, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(flowing)));
        consumer.schedulePollTask(() -> consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L,
                TimestampType.CREATE_TIME, 1, 0, "k", sent.value(), sent.headers(), Optional.empty())));
        consumer.schedulePollTask(() -> {
            consumer.committedTimeouts.set(Integer.MAX_VALUE); // the coordinator stops answering the reads
            consumer.readsWaitTheirTimeoutOnceWokenUp = true;
            consumer.rebalance(List.of(flowing, waiting)); // assigns only the new partition, which waits
        });
        CountDownLatch waitingAssigned = new CountDownLatch(1);
        consumer.schedulePollTask(waitingAssigned::countDown);
        List<Long> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST,
                record -> handled.add(record.offset()), consumer, null, null, new ThreadLocal<>(),
                Duration.ofMinutes(1), Duration.ofSeconds(1), Duration.ofMillis(200), Duration.ofSeconds(30),
                Set.of("orders"),
                Map.of(flowing, 0L, waiting, 0L));
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> waitingAssigned.getCount() == 0 || !loop.isRunning());
        assertEquals(List.of(0L), handled);
        loop.close();
        loop.finished().toCompletableFuture().join();

        assertEquals(new OffsetAndMetadata(1), consumer.committedAtClose.get(flowing),
                "the record handled is committed: " + consumer.committedAtClose);
    }

    @Test
    void synchronousCommitsWaitAtMostTheRequestTimeoutAndAtCloseTheCloseTimeout() throws InterruptedException {
        // The commits of a LATEST start at the assignment, on revoke and at close were made with commitSync
        // without a timeout, each blocking the member up to the consumer's default.api.timeout.ms (60 s) when the
        // group's coordinator does not answer, whatever the transport's timeouts said.
        TopicPartition first = new TopicPartition("orders", 0);
        TopicPartition second = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(first, 0L, second, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(first))); // its start commit
        consumer.schedulePollTask(() -> consumer.addRecord(new ConsumerRecord<>("orders", 0, 5L, 0L,
                TimestampType.CREATE_TIME, 1, 0, "k", sent.value(), sent.headers(), Optional.empty())));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(second))); // the commit on revoke, a start commit
        consumer.schedulePollTask(() -> consumer.addRecord(new ConsumerRecord<>("orders", 1, 0L, 0L,
                TimestampType.CREATE_TIME, 1, 0, "k", sent.value(), sent.headers(), Optional.empty())));
        CountDownLatch polledPast = new CountDownLatch(1);
        consumer.schedulePollTask(polledPast::countDown);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(20), Duration.ofSeconds(30),
                Set.of("orders"), Map.of(first, 5L, second, 0L));
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> polledPast.getCount() == 0 || !loop.isRunning());
        loop.close(); // the final commit

        assertEquals(List.of("PT30S", "PT30S", "PT30S", "PT20S"), consumer.commitWaits,
                "the start, revoke and start commits get the request timeout, the final commit the close timeout");
        assertEquals(Map.of(first, new OffsetAndMetadata(6), second, new OffsetAndMetadata(1)),
                consumer.committedAtClose);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void theFinalCommitIsMadeOnceWithinTheCloseTimeoutNotAgainByTheConsumersCloseOnRevoke(boolean finalCommitTimesOut)
            throws InterruptedException {
        // KafkaConsumer's close() leaves the group through the rebalance listener's onPartitionsRevoked, which
        // committed the handled records again after the final commit had: a second request when that one
        // succeeded, and when it had timed out (after the close timeout) one more wait of up to the request
        // timeout, where docs/kafka.md bounds the final commit by the close timeout.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithTwoRecords(partition);
        consumer.revokesOnClose = true;
        consumer.commitTimeouts.set(finalCommitTimesOut ? 1 : 0); // async commits fail: the first sync one is the final
        CountDownLatch handledBoth = new CountDownLatch(2);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handledBoth.countDown(), consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(20), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        handledBoth.await();
        loop.close();

        assertEquals(List.of("PT20S"), consumer.commitWaits, "one final commit, given the close timeout");
        assertEquals(finalCommitTimesOut ? Map.of() : Map.of(partition, new OffsetAndMetadata(2)),
                consumer.committedAtClose);
    }

    @Test
    void aLatestStartNotCommittedInTimeIsCommittedAgainBeforeItsPartitionIsConsumed() throws InterruptedException {
        // A start commit that failed (here not acknowledged in time) was logged as a warning and the partition
        // consumed all the same: until a record was handled there, the group had no offset on it, so a member
        // taking it over after this one (a close, a crash, a rebalance) started at the end as of its own
        // subscribe, skipping what was published in between. The partition now waits, paused, and is positioned
        // again, its start sought and committed, before each poll, each attempt waiting up to pollTimeout.
        WakingConsumer consumer = new WakingConsumer();
        consumer.commitTimeouts.set(1);
        assertTheStartIsCommittedAgainBeforeThePartitionIsConsumed(consumer);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aLatestStartCommitRefusedForARebalanceIsCommittedAgainBeforeItsPartitionIsConsumed(boolean generationMoved)
            throws InterruptedException {
        // A start commit the coordinator refused for a rebalance (RebalanceInProgressException while the group
        // rebalances, CommitFailedException once its generation moved on) is not retriable: it was logged and
        // the partition consumed all the same, so until a record was handled there the group had no offset on
        // it, and the member taking it over in that very rebalance, had it subscribed later, started at the end
        // as of its own subscribe, skipping what was published in between. The partition now waits, paused, as
        // for a commit not acknowledged in time, and its start is committed again before it is consumed.
        WakingConsumer consumer = new WakingConsumer();
        consumer.commitRefusal.set(generationMoved
                ? new org.apache.kafka.clients.consumer.CommitFailedException()
                : new org.apache.kafka.common.errors.RebalanceInProgressException("the group is rebalancing"));
        assertTheStartIsCommittedAgainBeforeThePartitionIsConsumed(consumer);
    }

    @Test
    void aPartitionRevokedWhileItsLatestStartWaitsToBeCommittedAgainHasItCommittedBeforeItGoes()
            throws InterruptedException {
        // A partition whose start commit failed waits, paused, to be positioned and committed again before each
        // poll; revoked meanwhile (the coordinator slow through a rebalance), it was dropped from that wait with
        // its start never committed, so the member it went to, had it subscribed later, started at the end as of
        // its own subscribe, skipping what was published since this one's. The revocation now makes one more
        // attempt, as closing does, while the partition is still this member's.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = new WakingConsumer();
        consumer.commitTimeouts.set(2); // at the assignment, and when made again before the next poll
        consumer.updateBeginningOffsets(Map.of(partition, 0L));
        consumer.updateEndOffsets(Map.of(partition, 7L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(partition)));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of()));
        CountDownLatch revoked = new CountDownLatch(1);
        consumer.schedulePollTask(revoked::countDown);
        ConsumerLoop loop = latestMember(consumer, partition);
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> revoked.getCount() == 0 || !loop.isRunning());
        loop.close();

        assertEquals(List.of("PT30S", "PT0.01S", "PT0.01S"), consumer.commitWaits,
                "the start is committed once more as the partition is revoked, within pollTimeout");
        assertEquals(Map.of(partition, new OffsetAndMetadata(5)), consumer.committedAtClose);
    }

    @ParameterizedTest(name = "exactlyOnce={0}")
    @ValueSource(booleans = {false, true})
    void aDeclinedRecordKeepsTheRecordsHandledBeforeItAndHasThePositionCommittedUpToItPastTheMarkerBetween(
            boolean exactlyOnce) throws InterruptedException {
        // A dead-letter redrive's letter past its end: its handler did nothing for it. In exactly-once mode the
        // batch's transaction aborted with the record before it (the run's redrive), and in both modes the offset
        // committed was the handled record's next (1), before the commit marker at 1 that no record shows.
        TopicPartition partition = new TopicPartition("orders", 0);
        WakingConsumer consumer = consumerWithRecordsAt(partition, 0, 2); // a commit marker at 1
        MockProducer<String, byte[]> producer = exactlyOnce ? new MockProducer<>() : null;
        if (exactlyOnce) {
            producer.initTransactions();
        }
        CountDownLatch declined = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, record -> {
            if (record.offset() == 2) {
                declined.countDown();
                throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
            }
        }, consumer, producer, exactlyOnce ? oneProducer() : null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        declined.await();
        loop.close();

        if (exactlyOnce) {
            assertEquals(List.of(Map.of(partition, new OffsetAndMetadata(2))), producer.consumerGroupOffsetsHistory()
                    .stream().flatMap(byGroup -> byGroup.values().stream()).toList(),
                    "committed with the transaction, up to the declined record");
            assertFalse(producer.transactionAborted(), "nothing withdrawn");
        } else {
            assertEquals(Map.of(partition, new OffsetAndMetadata(2)), consumer.committedAtClose);
        }
    }

    @Test
    void inExactlyOnceModeADeclinedRecordCommitsTheOutputsAndOffsetsOfTheBatchsOtherRecordsAndLeavesItAndThoseAfterIt()
            throws InterruptedException {
        // One batch: orders-0 at 0, 1 (declined), 2 and orders-1 at 0, 1. What the handlers before the declined
        // record and on the other partition sent commits with their offsets in the batch's transaction; the
        // declined record and the one after it are not handled in it, and orders-0 is committed up to the declined
        // record (1, not 3: nothing skipped), sought back to it and paused for its delay.
        TopicPartition declinedPartition = new TopicPartition("orders", 0);
        TopicPartition other = new TopicPartition("orders", 1);
        WakingConsumer consumer = withRecordsAt(new WakingConsumer(),
                Map.of(declinedPartition, new long[] {0, 1, 2}, other, new long[] {0, 1}));
        AtomicReference<Long> positionAfterTheBatch = new AtomicReference<>();
        AtomicReference<Set<TopicPartition>> pausedAfterTheBatch = new AtomicReference<>();
        CountDownLatch polledAfterTheBatch = new CountDownLatch(1);
        consumer.schedulePollTask(() -> {
            positionAfterTheBatch.set(consumer.position(declinedPartition));
            pausedAfterTheBatch.set(consumer.paused());
            polledAfterTheBatch.countDown();
        });
        MockProducer<String, byte[]> producer = new MockProducer<>(true, null,
                new org.apache.kafka.common.serialization.StringSerializer(),
                new org.apache.kafka.common.serialization.ByteArraySerializer());
        producer.initTransactions();
        List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, record -> {
            String at = record.partition() + "@" + record.offset();
            handled.add(at);
            if (at.equals("0@1")) {
                throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
            }
            producer.send(new ProducerRecord<>("out", at, new byte[0])); // the record's output, in the transaction
        }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        polledAfterTheBatch.await();
        loop.close();

        assertEquals(List.of("0@0", "0@1", "1@0", "1@1"), handled,
                "the other partition handled, nothing after the declined record of its partition");
        assertEquals(List.of("0@0", "1@0", "1@1"), producer.history().stream().map(ProducerRecord::key).toList(),
                "the other records' outputs committed");
        assertFalse(producer.transactionAborted(), "nothing withdrawn");
        assertEquals(List.of(Map.of(declinedPartition, new OffsetAndMetadata(1), other, new OffsetAndMetadata(2))),
                producer.consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList(),
                "committed with those outputs, orders-0 up to the declined record");
        assertEquals(1L, positionAfterTheBatch.get(), "sought back to the declined record");
        assertEquals(Set.of(declinedPartition), pausedAfterTheBatch.get(), "its partition alone waits");
    }

    @Test
    void inExactlyOnceModeADeclinedPartitionThatAnotherRecordsFailureMovesBackKeepsWaitingForItsDelay()
            throws InterruptedException {
        // One batch: orders-0 at 0, 1 (declined for a minute) and orders-1 at 0, whose handler fails. The failure
        // aborts the transaction and moves both partitions back to their first record of the batch; orders-1 waits
        // redeliveryBackoff (1 s), and orders-0 the minute its declined record asked for, not nothing.
        TopicPartition declinedPartition = new TopicPartition("orders", 0);
        TopicPartition failing = new TopicPartition("orders", 1);
        WakingConsumer consumer = withRecordsAt(new WakingConsumer(),
                Map.of(declinedPartition, new long[] {0, 1}, failing, new long[] {0}));
        java.util.concurrent.atomic.AtomicLong nanos = new java.util.concurrent.atomic.AtomicLong();
        AtomicReference<Long> positionAfterTheBatch = new AtomicReference<>();
        AtomicReference<Set<TopicPartition>> pausedAfterTheBatch = new AtomicReference<>();
        AtomicReference<Set<TopicPartition>> pausedAfterTheBackoff = new AtomicReference<>();
        CountDownLatch polledAfterTheBackoff = new CountDownLatch(1);
        consumer.schedulePollTask(() -> {
            positionAfterTheBatch.set(consumer.position(declinedPartition));
            pausedAfterTheBatch.set(consumer.paused());
            nanos.addAndGet(Duration.ofSeconds(2).toNanos()); // past the backoff, short of the minute
        });
        consumer.schedulePollTask(() -> {
            pausedAfterTheBackoff.set(consumer.paused());
            polledAfterTheBackoff.countDown();
        });
        MockProducer<String, byte[]> producer = new MockProducer<>(true, null,
                new org.apache.kafka.common.serialization.StringSerializer(),
                new org.apache.kafka.common.serialization.ByteArraySerializer());
        producer.initTransactions();
        List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, record -> {
            String at = record.partition() + "@" + record.offset();
            handled.add(at);
            if (at.equals("0@1")) {
                throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
            }
            if (at.equals("1@0")) {
                throw new IllegalStateException("down");
            }
        }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of(), nanos::get);
        loop.start("streamsaga-kafka-billing-0");

        polledAfterTheBackoff.await();
        loop.close();

        assertEquals(List.of("0@0", "0@1", "1@0"), handled);
        assertTrue(producer.transactionAborted(), "the failure withdrew the batch");
        assertEquals(0L, positionAfterTheBatch.get(), "moved back to its first record of the batch");
        assertEquals(Set.of(declinedPartition, failing), pausedAfterTheBatch.get(),
                "the declined record's partition waits as well as the failing one");
        assertEquals(Set.of(declinedPartition), pausedAfterTheBackoff.get(),
                "once the backoff is over the failing partition is resumed, the declined one waits for its minute");
    }

    @Test
    void inExactlyOnceModeADeclinedPartitionWhoseBatchFailsToCommitWaitsForItsDelayNotOnlyTheBackoff()
            throws InterruptedException {
        // One batch: orders-0 at 0, 1 (declined for a minute) and orders-1 at 0; every handler returns but the commit
        // fails, so the batch is aborted and both partitions wait: orders-1 redeliveryBackoff (1 s), and orders-0 the
        // minute its declined record asked for, not only the backoff.
        TopicPartition declinedPartition = new TopicPartition("orders", 0);
        TopicPartition other = new TopicPartition("orders", 1);
        WakingConsumer consumer = withRecordsAt(new WakingConsumer(),
                Map.of(declinedPartition, new long[] {0, 1}, other, new long[] {0}));
        java.util.concurrent.atomic.AtomicLong nanos = new java.util.concurrent.atomic.AtomicLong();
        AtomicReference<Set<TopicPartition>> pausedAfterTheBatch = new AtomicReference<>();
        AtomicReference<Set<TopicPartition>> pausedAfterTheBackoff = new AtomicReference<>();
        CountDownLatch polledAfterTheBackoff = new CountDownLatch(1);
        consumer.schedulePollTask(() -> {
            pausedAfterTheBatch.set(consumer.paused());
            nanos.addAndGet(Duration.ofSeconds(2).toNanos()); // past the backoff, short of the minute
        });
        consumer.schedulePollTask(() -> {
            pausedAfterTheBackoff.set(consumer.paused());
            polledAfterTheBackoff.countDown();
        });
        CommitFailingOnceProducer producer = new CommitFailingOnceProducer();
        producer.initTransactions();
        List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST, record -> {
            String at = record.partition() + "@" + record.offset();
            handled.add(at);
            if (at.equals("0@1")) {
                throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
            }
        }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of(), nanos::get);
        loop.start("streamsaga-kafka-billing-0");

        polledAfterTheBackoff.await();
        loop.close();

        assertEquals(List.of("0@0", "0@1", "1@0"), handled);
        assertEquals(1, producer.aborts(), "the failed commit withdrew the batch");
        assertEquals(Set.of(declinedPartition, other), pausedAfterTheBatch.get(), "the whole batch waits");
        assertEquals(Set.of(declinedPartition), pausedAfterTheBackoff.get(),
                "once the backoff is over the other partition is resumed, the declined one waits for its minute");
    }

    @Test
    void aPositionThatAPollMovedPastRecordsItDidNotReturnIsCommitted() throws InterruptedException {
        // read_committed: a poll moves the position past an aborted transaction's records and its marker (or a
        // commit marker fetched alone) without returning a record. Only handled records were committed, so the
        // group's offset stayed before them for ever: its lag never reached the end, and a replay whose target
        // lay past them never caught up (a partition holding nothing but such records was never committed).
        TopicPartition handled = new TopicPartition("orders", 0);
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(handled, 0L, onlyAborted, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> {
            consumer.rebalance(List.of(handled, onlyAborted));
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                    "k", sent.value(), sent.headers(), Optional.empty()));
        });
        consumer.schedulePollTask(() -> {
            consumer.seek(handled, 3); // past aborted offset 1 and the abort marker at 2
            consumer.seek(onlyAborted, 2);
        });
        CountDownLatch polledPast = new CountDownLatch(1);
        consumer.schedulePollTask(polledPast::countDown);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        polledPast.await();
        loop.close();

        assertEquals(Map.of(handled, new OffsetAndMetadata(3), onlyAborted, new OffsetAndMetadata(2)),
                consumer.committedAtClose);
    }

    @Test
    void aPartitionWhosePositionKafkaCannotTellNowDoesNotStopTheMember() throws InterruptedException {
        // After every poll the member asks the consumer for the position of every assigned partition, to commit
        // one a poll moved past records it did not return. That is a lookup while the position is valid, but
        // for a partition whose position awaits validation (its leader changed, the new one not reachable) or a
        // reset, KafkaConsumer.position blocks the poll loop up to default.api.timeout.ms (60 s) and then throws
        // a TimeoutException, which ended the member as an unexpected error, where its poll rides that out.
        TopicPartition flowing = new TopicPartition("orders", 0);
        TopicPartition unsettled = new TopicPartition("orders", 1);
        WakingConsumer consumer = new WakingConsumer();
        consumer.updateBeginningOffsets(Map.of(flowing, 0L, unsettled, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(flowing, unsettled)));
        consumer.schedulePollTask(() -> {
            consumer.unsettled = unsettled; // its leader changed: its position awaits validation
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                    "k", sent.value(), sent.headers(), Optional.empty()));
        });
        consumer.schedulePollTask(() -> {
            consumer.unsettled = null; // validated, and the next fetch moved it past an aborted record and its marker
            consumer.seek(unsettled, 2);
        });
        CountDownLatch polledPast = new CountDownLatch(1);
        consumer.schedulePollTask(polledPast::countDown);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> polledPast.getCount() == 0 || !loop.isRunning());
        assertTrue(loop.isRunning(), "the member goes on");
        loop.close();

        assertEquals(Map.of(flowing, new OffsetAndMetadata(1), unsettled, new OffsetAndMetadata(2)),
                consumer.committedAtClose, "the position moved is committed once the consumer can tell it");
    }

    @Test
    void anExactlyOnceMemberCommitsThePositionsAPollMovedOnlyInItsTransactions() throws InterruptedException {
        // The group coordinator keeps, of a partition's transactional and plain commits, the one appended last
        // to __consumer_offsets, whatever its offset. A plain commitAsync of a moved position, made at one poll
        // and appended late (the coordinator looked up again, a slow connection) after the next batch's
        // transactional offsets, took the group back before that batch, whose records the next member handled
        // again, producing their outputs a second time. Moved positions now go into the member's transactions:
        // the batch's of the same poll, or one of their own when the poll returned no record.
        TopicPartition handled = new TopicPartition("orders", 0);
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        PlainCommitsRecordingConsumer consumer = new PlainCommitsRecordingConsumer();
        consumer.updateBeginningOffsets(Map.of(handled, 0L, onlyAborted, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> {
            consumer.rebalance(List.of(handled, onlyAborted));
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                    "k", sent.value(), sent.headers(), Optional.empty()));
        });
        consumer.schedulePollTask(() -> {
            consumer.seek(onlyAborted, 2); // past aborted offset 0 and the abort marker at 1
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 1L, 0L, TimestampType.CREATE_TIME, 1, 0,
                    "k", sent.value(), sent.headers(), Optional.empty()));
        });
        consumer.schedulePollTask(() -> consumer.seek(handled, 4)); // past aborted offset 2 and its marker at 3
        CountDownLatch polledPast = new CountDownLatch(1);
        consumer.schedulePollTask(polledPast::countDown);
        MockProducer<String, byte[]> producer = new MockProducer<>();
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        polledPast.await();
        loop.close();

        assertEquals(List.of(), consumer.plainCommits, "no plain commit of the group's offsets");
        assertEquals(List.of(Map.of(handled, new OffsetAndMetadata(1)),
                        Map.of(handled, new OffsetAndMetadata(2), onlyAborted, new OffsetAndMetadata(2)),
                        Map.of(handled, new OffsetAndMetadata(4))),
                producer.consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList(),
                "the moved position in the same poll's batch transaction, then in a transaction of its own");
    }

    @Test
    void aTransactionOfMovedPositionsOnlyThatFailsToCommitIsAbortedAndMadeAgainAfterTheBackoff() {
        // A poll that returned no record but moved a position commits it in a transaction of its own; one that
        // fails to commit is aborted as a batch's is, and the position is committed again after the backoff.
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        PlainCommitsRecordingConsumer consumer = new PlainCommitsRecordingConsumer();
        consumer.updateBeginningOffsets(Map.of(onlyAborted, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(onlyAborted)));
        consumer.schedulePollTask(() -> consumer.seek(onlyAborted, 2)); // past aborted offset 0 and its marker
        CommitFailingOnceProducer producer = new CommitFailingOnceProducer();
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofMillis(10), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> producer.committedOffsets().size() == 1 || !loop.isRunning());
            assertEquals(List.of(Map.of(onlyAborted, new OffsetAndMetadata(2))), producer.committedOffsets());
            assertEquals(1, producer.aborts(), "the failed transaction is aborted");
            assertTrue(loop.isRunning(), "the member goes on");
            assertEquals(List.of(), consumer.plainCommits, "no plain commit of the group's offsets");
        } finally {
            loop.close();
        }
    }

    @Test
    void aFailedTransactionOfMovedPositionsOnlyIsLoggedAsSuchNotAsABatchRedelivered() {
        // Its warning said "aborting and redelivering the batch", though it had no batch: what is made again
        // after the backoff is the commit of the moved positions. Reads slf4j-simple's output (System.err).
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        PlainCommitsRecordingConsumer consumer = new PlainCommitsRecordingConsumer();
        consumer.updateBeginningOffsets(Map.of(onlyAborted, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(onlyAborted)));
        consumer.schedulePollTask(() -> consumer.seek(onlyAborted, 2)); // past aborted offset 0 and its marker
        CommitFailingOnceProducer producer = new CommitFailingOnceProducer();
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofMillis(10), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            loop.start("streamsaga-kafka-billing-0");
            await().until(() -> producer.committedOffsets().size() == 1 || !loop.isRunning());
        } finally {
            loop.close();
            System.setErr(original);
        }
        String logged = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertFalse(logged.contains("batch"), logged);
        assertTrue(logged.contains("committing only positions its poll moved past records it did not return failed,"
                + " aborting it and committing them again after PT0.01S"), logged);
    }

    @Test
    void anIdleExactlyOnceMemberCommitsAMovedPositionInOneTransactionNotOneForEveryPollAfter() throws InterruptedException {
        // Cost: a member idle on a partition it moved past records it did not return must not begin a
        // transaction of moved positions at every poll after the one that committed them.
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        PlainCommitsRecordingConsumer consumer = new PlainCommitsRecordingConsumer();
        consumer.updateBeginningOffsets(Map.of(onlyAborted, 0L));
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(onlyAborted)));
        consumer.schedulePollTask(() -> consumer.seek(onlyAborted, 2)); // past aborted offset 0 and its marker
        for (int i = 0; i < 20; i++) {
            consumer.schedulePollTask(() -> { }); // idle polls
        }
        CountDownLatch idle = new CountDownLatch(1);
        consumer.schedulePollTask(idle::countDown);
        TransactionCountingProducer producer = new TransactionCountingProducer();
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        idle.await();
        loop.close();

        assertEquals(1, producer.begun(), "one transaction, for the one move");
        assertEquals(List.of(Map.of(onlyAborted, new OffsetAndMetadata(2))),
                producer.consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList());
    }

    @Test
    void aPositionMovedOnAnotherPartitionIsCommittedAgainAfterTheBatchTransactionItWasFoldedIntoAborted() {
        // A poll moves one partition past an aborted transaction and returns a record of another, whose handler
        // throws: the batch transaction, which carried the moved position, aborts. The moved position must be
        // committed by a later transaction, not left until its partition moves again.
        TopicPartition failing = new TopicPartition("orders", 0);
        TopicPartition onlyAborted = new TopicPartition("orders", 1);
        PlainCommitsRecordingConsumer consumer = new PlainCommitsRecordingConsumer();
        consumer.updateBeginningOffsets(Map.of(failing, 0L, onlyAborted, 0L));
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(failing, onlyAborted)));
        consumer.schedulePollTask(() -> {
            consumer.seek(onlyAborted, 2); // past aborted offset 0 and its marker
            consumer.addRecord(new ConsumerRecord<>("orders", 0, 0L, 0L, TimestampType.CREATE_TIME, 1, 0,
                    "k", sent.value(), sent.headers(), Optional.empty()));
        });
        MockProducer<String, byte[]> producer = new MockProducer<>();
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> {
                    throw new IllegalStateException("handler failed");
                }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofHours(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");
        try {
            await().until(() -> committedOffsets(producer).contains(Map.of(onlyAborted, new OffsetAndMetadata(2)))
                    || !loop.isRunning());
            assertTrue(loop.isRunning());
            assertEquals(List.of(), consumer.plainCommits, "no plain commit of the group's offsets");
        } finally {
            loop.close();
        }
    }

    @Test
    void aTransactionThatCannotBeginIsAbortedAndTheBatchHandledAgainNotTheMemberEndedAsByAnUnexpectedError() {
        // beginTransaction on a producer left in an abortable error state throws; it was called outside the
        // handling of transaction failures, so the member ended through "stopped by an unexpected error".
        TopicPartition partition = new TopicPartition("orders", 0);
        MockConsumer<String, byte[]> consumer = withRecordsAt(new MockConsumer<>("earliest"), partition, 0);
        BeginFailingOnceProducer producer = new BeginFailingOnceProducer(
                new org.apache.kafka.common.KafkaException("Cannot execute transactional method because we are in an error state"));
        producer.initTransactions();
        AtomicInteger handled = new AtomicInteger();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handled.incrementAndGet(), consumer, producer, oneProducer(), new ThreadLocal<>(),
                Duration.ofMillis(10), Duration.ofMillis(10), Duration.ofSeconds(5), Duration.ofSeconds(30),
                Set.of(), Map.of());
        java.io.PrintStream original = System.err; // reads slf4j-simple's output
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            loop.start("streamsaga-kafka-billing-0");
            // aborted, then the batch's partition sought back to its first record, to be handled again
            await().until(() -> (producer.aborts() == 1 && consumer.position(partition) == 0) || !loop.isRunning());
            assertTrue(loop.isRunning(), "the member goes on");
            assertEquals(0, handled.get(), "nothing is handled outside a transaction");
            assertEquals(List.of(), producer.committedOffsets());
        } finally {
            loop.close();
            System.setErr(original);
        }
        // it said "failed, aborting it and handling the batch again", of a transaction that never began
        String logged = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(logged.contains("transaction of group billing on orders could not begin, aborting the producer's"
                + " failed transaction to recover it and handling the batch after PT0.01S"), logged);
        assertFalse(logged.contains("failed, aborting it"), logged);
    }

    @Test
    void aFencedProducerThatCannotBeginATransactionStopsTheMemberAsFenced() {
        TopicPartition partition = new TopicPartition("orders", 0);
        MockConsumer<String, byte[]> consumer = withRecordsAt(new MockConsumer<>("earliest"), partition, 0);
        BeginFailingOnceProducer producer = new BeginFailingOnceProducer(
                new org.apache.kafka.common.errors.ProducerFencedException("another producer took the transactional id"));
        producer.initTransactions();
        AtomicInteger handled = new AtomicInteger();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> handled.incrementAndGet(), consumer, producer, oneProducer(), new ThreadLocal<>(),
                Duration.ofMillis(10), Duration.ofMillis(10), Duration.ofSeconds(5), Duration.ofSeconds(30),
                Set.of(), Map.of());
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            loop.start("streamsaga-kafka-billing-0");
            loop.finished().toCompletableFuture().join();
        } finally {
            loop.close();
            System.setErr(original);
        }
        String logged = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(logged.contains("consumer of group billing on orders was fenced and stops"), logged);
        assertFalse(logged.contains("unexpected error"), logged);
        assertEquals(0, handled.get(), "nothing is handled outside a transaction");
    }

    @Test
    void aCommitInterruptedByTheSecondPhaseOfClosingIsNotLoggedAsAFailedTransactionThatCannotAbort() throws InterruptedException {
        // close() interrupts a loop still running after the close timeout; landing in commitTransaction, the
        // interrupt surfaces as Kafka's InterruptException, a KafkaException: the loop warned that the
        // transaction "failed while closing", tried to abort (interrupted again) and warned it "cannot abort
        // and stops". The member is closing as asked: one debug line, no warning. Reads slf4j-simple's System.err.
        TopicPartition partition = new TopicPartition("orders", 0);
        MockConsumer<String, byte[]> consumer = withRecordsAt(new MockConsumer<>("earliest"), partition, 0);
        CountDownLatch inCommit = new CountDownLatch(1);
        CommitBlockingUntilInterruptedProducer producer = new CommitBlockingUntilInterruptedProducer(inCommit);
        producer.initTransactions();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, producer, oneProducer(), new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofMillis(10), Duration.ofMillis(200), Duration.ofSeconds(30), Set.of(), Map.of());
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            loop.start("streamsaga-kafka-billing-0");
            inCommit.await();
            loop.close(); // the commit does not return: the second phase interrupts it
            loop.finished().toCompletableFuture().join();
        } finally {
            System.setErr(original);
        }
        String logged = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertFalse(logged.contains("WARN"), logged);
        assertFalse(logged.contains("ERROR"), logged);
    }

    private static List<Map<TopicPartition, OffsetAndMetadata>> committedOffsets(MockProducer<String, byte[]> producer) {
        synchronized (producer) {
            return producer.consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList();
        }
    }

    @Test
    void closingAMemberTwiceWakesItsConsumerOnce() {
        // The second close woke the consumer again, closed by then (harmless for KafkaConsumer, but a call on a
        // closed client all the same): it now only waits for the thread, which has ended.
        RecordingConsumer consumer = new RecordingConsumer();
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.EARLIEST,
                record -> { }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10),
                Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30), Set.of(), Map.of());
        loop.start("streamsaga-kafka-billing-0");

        loop.close();
        loop.close();

        assertTrue(loop.finished().toCompletableFuture().isDone());
        assertEquals(1, consumer.wakeups.get(), "woken up by the first close only");
    }

    /**
     * Runs a plain LATEST member whose subscribe read the end 5 of orders-0, on {@code consumer}, whose first start
     * commit fails, and asserts that the record at 5 is handled only after the start was committed again, within
     * pollTimeout, and that the member goes on.
     */
    private static void assertTheStartIsCommittedAgainBeforeThePartitionIsConsumed(WakingConsumer consumer)
            throws InterruptedException {
        TopicPartition partition = new TopicPartition("orders", 0);
        withRecordsAt(consumer, partition, 5);
        consumer.updateEndOffsets(Map.of(partition, 7L));
        List<String> commitsWhenHandled = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch handled = new CountDownLatch(1);
        ConsumerLoop loop = new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST,
                record -> {
                    commitsWhenHandled.addAll(consumer.commitWaits);
                    handled.countDown();
                }, consumer, null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1),
                Duration.ofSeconds(20), Duration.ofSeconds(30), Set.of("orders"), Map.of(partition, 5L));
        loop.start("streamsaga-kafka-billing-0");

        await().until(() -> handled.getCount() == 0 || !loop.isRunning());
        assertTrue(loop.isRunning(), "the member goes on");
        assertTrue(loop.awaitAssignment(Duration.ZERO), "the assignment completes once the start is committed");
        assertEquals(List.of("PT30S", "PT0.01S"), commitsWhenHandled,
                "the record is handled only after its start was committed again, within pollTimeout");
        loop.close();

        assertEquals(Map.of(partition, new OffsetAndMetadata(6)), consumer.committedAtClose);
    }

    /** A plain {@link StartPosition#LATEST} member of billing on orders; its subscribe read the end 5 of {@code partition}. */
    private static ConsumerLoop latestMember(WakingConsumer consumer, TopicPartition partition) {
        return new ConsumerLoop("billing", TopicPattern.of("orders"), StartPosition.LATEST, record -> { }, consumer,
                null, null, new ThreadLocal<>(), Duration.ofMillis(10), Duration.ofSeconds(1), Duration.ofSeconds(30),
                Duration.ofSeconds(30), Set.of("orders"), Map.of(partition, 5L));
    }

    /**
     * Schedules a poll that waits until closing wakes the consumer up, then runs {@code before} and rebalances to
     * {@code assignment}: a rebalance that {@code close()} lands in. The latch returned opens once that poll runs.
     */
    private static CountDownLatch rebalanceOnceWokenUp(WakingConsumer consumer, List<TopicPartition> assignment,
                                                       Runnable before) {
        CountDownLatch inRebalance = new CountDownLatch(1);
        consumer.schedulePollTask(() -> {
            inRebalance.countDown();
            try {
                consumer.wokenUp.await();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            before.run();
            consumer.rebalance(assignment);
        });
        return inRebalance;
    }

    /** Blocks the handler of offset 0 until closing has woken the consumer up. */
    private static void handleFirstUntilWokenUp(TransportRecord record, CountDownLatch inHandler,
                                                WakingConsumer consumer) throws InterruptedException {
        if (record.offset() == 0) {
            inHandler.countDown();
            consumer.wokenUp.await();
        }
    }

    private static WakingConsumer consumerWithTwoRecords(TopicPartition partition) {
        return consumerWithRecordsAt(partition, 0, 1);
    }

    /** A consumer whose first poll assigns {@code partition} and returns records of it at {@code offsets}. */
    private static WakingConsumer consumerWithRecordsAt(TopicPartition partition, long... offsets) {
        return withRecordsAt(new WakingConsumer(), partition, offsets);
    }

    /** {@code consumer}, whose first poll assigns {@code partition} and returns records of it at {@code offsets}. */
    private static <C extends MockConsumer<String, byte[]>> C withRecordsAt(C consumer, TopicPartition partition,
                                                                           long... offsets) {
        return withRecordsAt(consumer, Map.of(partition, offsets));
    }

    /**
     * {@code consumer}, each partition of {@code offsets} beginning at 0, whose first poll assigns them all and returns
     * the records of each at its offsets, the partitions in their order.
     */
    private static <C extends MockConsumer<String, byte[]>> C withRecordsAt(C consumer,
                                                                           Map<TopicPartition, long[]> offsets) {
        List<TopicPartition> partitions = offsets.keySet().stream()
                .sorted(java.util.Comparator.comparingInt(TopicPartition::partition)).toList();
        Map<TopicPartition, Long> beginnings = new HashMap<>();
        partitions.forEach(partition -> beginnings.put(partition, 0L));
        consumer.updateBeginningOffsets(beginnings);
        ProducerRecord<String, byte[]> sent = WireFormat.toRecord(
                Message.builder("orders").key("k").type("test").payload(new byte[0]).build());
        consumer.schedulePollTask(() -> {
            consumer.rebalance(partitions);
            for (TopicPartition partition : partitions) {
                for (long offset : offsets.get(partition)) {
                    consumer.addRecord(new ConsumerRecord<>(partition.topic(), partition.partition(), offset, 0L,
                            TimestampType.CREATE_TIME, 1, 0, "k", sent.value(), sent.headers(), Optional.empty()));
                }
            }
        });
        return consumer;
    }

    private static TransactionalProducers oneProducer() {
        return new TransactionalProducers() {
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
        };
    }

    /**
     * A consumer whose wakeup, as KafkaConsumer's, stays pending until the next blocking call (a poll or a
     * commitSync), which throws it; and whose async commits fail, as one may (coordinator moved), so only a
     * synchronous commit commits. Records what is committed when it is closed, for every partition it was
     * assigned (a revoked one too).
     */
    /** A handler that takes every record and notes each partition it is told to forget as {@code topic-partition}. */
    private static RecordHandler forgetting(List<String> forgotten) {
        return new RecordHandler() {
            @Override
            public void handle(TransportRecord record) {
            }

            @Override
            public void forgetPartition(String topic, int number) {
                forgotten.add(topic + "-" + number);
            }
        };
    }

    private static final class WakingConsumer extends MockConsumer<String, byte[]> {
        final CountDownLatch wokenUp = new CountDownLatch(1);
        private final AtomicBoolean wakeupPending = new AtomicBoolean();
        private boolean inCommitSync;
        /** Whether {@code committed}, a blocking call in KafkaConsumer too, throws a pending wakeup. */
        volatile boolean wakeupInCommitted;
        /** What commitSync committed (MockConsumer's committed() reports 0 for a partition since revoked). */
        private final Map<TopicPartition, OffsetAndMetadata> committedSync = new HashMap<>();
        volatile Map<TopicPartition, OffsetAndMetadata> committedAtClose;
        /** How many more calls of {@code committed} throw a TimeoutException, as KafkaConsumer's after its timeout. */
        final AtomicInteger committedTimeouts = new AtomicInteger();
        /** How long each read of committed offsets was given: its timeout, or default.api.timeout.ms when none. */
        final List<String> committedReadWaits = new java.util.concurrent.CopyOnWriteArrayList<>();
        private Duration boundedRead;
        /** How many more synchronous commits throw a TimeoutException, as KafkaConsumer's after its timeout. */
        final AtomicInteger commitTimeouts = new AtomicInteger();
        /**
         * How long each synchronous commit was given (one that threw a pending wakeup not counted): its timeout, or
         * default.api.timeout.ms when none.
         */
        final List<String> commitWaits = new java.util.concurrent.CopyOnWriteArrayList<>();
        private Duration boundedCommit;
        /** What the next synchronous commit throws, once: the coordinator refusing it (a rebalance). */
        final AtomicReference<RuntimeException> commitRefusal = new AtomicReference<>();
        /**
         * How long each position call that may wait was given: its timeout, or default.api.timeout.ms when none
         * (the lookups without a wait after every poll not counted).
         */
        final List<String> positionWaits = new java.util.concurrent.CopyOnWriteArrayList<>();
        private boolean boundedPosition;
        /**
         * Whether {@code committed}, once its timeouts are used up, blocks until the consumer is woken up and then
         * throws that wakeup, as KafkaConsumer's does when close() lands while it waits for the coordinator.
         */
        volatile boolean committedAwaitsWakeup;
        /**
         * Whether {@code committed} given a timeout, once the consumer's wakeup was thrown, waits that timeout
         * (interrupted, it throws an InterruptException, as KafkaConsumer's does) before it times out: Kafka does
         * not answer.
         */
        volatile boolean readsWaitTheirTimeoutOnceWokenUp;
        /** Never counted down: what a read of a Kafka that does not answer blocks on. */
        private final CountDownLatch kafkaNeverAnswers = new CountDownLatch(1);
        /** Whether {@code committed} stops timing out once the consumer is woken up (Kafka answering by then). */
        volatile boolean readsTimeOutUntilWokenUp;
        final CountDownLatch inCommittedAwaitingWakeup = new CountDownLatch(1);
        /** Calls of the blocking {@code position(partition)}, which waits default.api.timeout.ms, for {@link #unsettled}. */
        final AtomicInteger blockingPositionCallsOfUnsettled = new AtomicInteger();
        /** Polls made after the consumer was woken up. */
        final AtomicInteger pollsAfterWakeup = new AtomicInteger();
        /** A partition whose position KafkaConsumer cannot tell now: position throws, as it does after its timeout. */
        volatile TopicPartition unsettled;
        /**
         * Whether a position call given a wait tells {@link #unsettled}'s position (Kafka's answer arriving within
         * it), while one without a wait still cannot: KafkaConsumer's position(partition, Duration.ZERO) returns
         * only a position valid when it is called.
         */
        volatile boolean aWaitTellsUnsettled;

        /** Whether close() revokes the assigned partitions through the rebalance listener first, as KafkaConsumer's does. */
        volatile boolean revokesOnClose;
        private org.apache.kafka.clients.consumer.ConsumerRebalanceListener listener;

        WakingConsumer() {
            super("earliest");
        }

        /** The group generation groupMetadata tells; MockConsumer's own while null. */
        volatile Integer generation;

        @Override
        public synchronized org.apache.kafka.clients.consumer.ConsumerGroupMetadata groupMetadata() {
            Integer told = generation;
            return told == null ? super.groupMetadata()
                    : new org.apache.kafka.clients.consumer.ConsumerGroupMetadata("billing", told, "member-1", Optional.empty());
        }

        @Override
        public synchronized void subscribe(java.util.Collection<String> topics,
                                           org.apache.kafka.clients.consumer.ConsumerRebalanceListener listener) {
            this.listener = listener;
            super.subscribe(topics, listener);
        }

        @Override
        public synchronized long position(TopicPartition partition) {
            // MockConsumer's position(partition, timeout) calls this one
            if (!boundedPosition) {
                positionWaits.add("default.api.timeout.ms");
            }
            if (partition.equals(unsettled)) {
                blockingPositionCallsOfUnsettled.incrementAndGet();
                throw new org.apache.kafka.common.errors.TimeoutException(
                        "Timeout expired before the position for partition " + partition + " could be determined");
            }
            return super.position(partition);
        }

        @Override
        public synchronized long position(TopicPartition partition, Duration timeout) {
            if (!timeout.isZero()) {
                positionWaits.add(timeout.toString());
            }
            if (partition.equals(unsettled) && aWaitTellsUnsettled && !timeout.isZero()) {
                return super.position(partition); // MockConsumer's, not the override above
            }
            if (partition.equals(unsettled)) {
                throw new org.apache.kafka.common.errors.TimeoutException(
                        "Timeout expired before the position for partition " + partition + " could be determined");
            }
            boundedPosition = true;
            try {
                return super.position(partition, timeout);
            } finally {
                boundedPosition = false;
            }
        }

        @Override
        public void wakeup() {
            if (readsTimeOutUntilWokenUp) {
                committedTimeouts.set(0);
            }
            wakeupPending.set(true);
            wokenUp.countDown();
        }

        private void throwPendingWakeup() {
            if (wakeupPending.getAndSet(false)) {
                throw new WakeupException();
            }
        }

        @Override
        public synchronized ConsumerRecords<String, byte[]> poll(Duration timeout) {
            if (wokenUp.getCount() == 0) {
                pollsAfterWakeup.incrementAndGet();
            }
            throwPendingWakeup();
            return super.poll(timeout);
        }

        @Override
        public synchronized Map<TopicPartition, OffsetAndMetadata> committed(Set<TopicPartition> partitions,
                                                                             Duration timeout) {
            if (readsWaitTheirTimeoutOnceWokenUp && wokenUp.getCount() == 0 && !wakeupPending.get()) {
                try {
                    // Kafka not answering: the read blocks until its timeout or an interrupt (close()'s), as a real one
                    kafkaNeverAnswers.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    throw new org.apache.kafka.common.errors.InterruptException(e); // sets the interrupt again
                }
            }
            boundedRead = timeout;
            try {
                return super.committed(partitions, timeout); // MockConsumer's calls committed(partitions)
            } finally {
                boundedRead = null;
            }
        }

        @Override
        public synchronized Map<TopicPartition, OffsetAndMetadata> committed(Set<TopicPartition> partitions) {
            committedReadWaits.add(boundedRead == null ? "default.api.timeout.ms" : boundedRead.toString());
            if (wakeupInCommitted) {
                throwPendingWakeup();
            }
            if (committedTimeouts.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
                throw new org.apache.kafka.common.errors.TimeoutException(
                        "Timeout of 60000ms expired before the last committed offset for partitions " + partitions
                                + " could be determined");
            }
            if (committedAwaitsWakeup) {
                inCommittedAwaitingWakeup.countDown();
                try {
                    wokenUp.await();
                } catch (InterruptedException e) {
                    throw new org.apache.kafka.common.errors.InterruptException(e);
                }
                throwPendingWakeup();
            }
            return super.committed(partitions);
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout) {
            boundedCommit = timeout;
            try {
                commitSync(offsets); // as MockConsumer's does
            } finally {
                boundedCommit = null;
            }
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
            throwPendingWakeup();
            commitWaits.add(boundedCommit == null ? "default.api.timeout.ms" : boundedCommit.toString());
            if (Thread.interrupted()) { // as KafkaConsumer's network client, on an interrupted thread
                throw new org.apache.kafka.common.errors.InterruptException(new InterruptedException());
            }
            if (commitTimeouts.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
                throw new org.apache.kafka.common.errors.TimeoutException(
                        "Timeout of 60000ms expired before successfully committing offsets " + offsets);
            }
            RuntimeException refusal = commitRefusal.getAndSet(null);
            if (refusal != null) {
                throw refusal;
            }
            inCommitSync = true; // MockConsumer's commitSync commits through commitAsync
            try {
                super.commitSync(offsets);
                committedSync.putAll(offsets);
            } finally {
                inCommitSync = false;
            }
        }

        @Override
        public synchronized void commitAsync(Map<TopicPartition, OffsetAndMetadata> offsets,
                                             OffsetCommitCallback callback) {
            if (inCommitSync) {
                super.commitAsync(offsets, callback);
            } else {
                callback.onComplete(offsets, new RetriableCommitFailedException("coordinator not available"));
            }
        }

        @Override
        public synchronized void close(CloseOptions options) {
            if (revokesOnClose && listener != null) {
                listener.onPartitionsRevoked(assignment()); // leaving the group
            }
            committedAtClose = Map.copyOf(committedSync);
            super.close(options);
        }
    }

    /** A consumer that records every plain offset commit made through it. */
    private static final class PlainCommitsRecordingConsumer extends MockConsumer<String, byte[]> {
        final List<Map<TopicPartition, OffsetAndMetadata>> plainCommits = new java.util.concurrent.CopyOnWriteArrayList<>();

        PlainCommitsRecordingConsumer() {
            super("earliest");
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
            plainCommits.add(Map.copyOf(offsets));
            super.commitSync(offsets);
        }

        @Override
        public synchronized void commitAsync(Map<TopicPartition, OffsetAndMetadata> offsets,
                                             OffsetCommitCallback callback) {
            plainCommits.add(Map.copyOf(offsets));
            super.commitAsync(offsets, callback);
        }
    }

    /**
     * A consumer whose committed offsets, once its partitions are assigned, are those of a transaction whose
     * markers are not written yet: {@code committed}, which asks for stable offsets, waits until they are.
     */
    private static final class MarkersPendingConsumer extends MockConsumer<String, byte[]> {
        final CountDownLatch asked = new CountDownLatch(1);
        final CountDownLatch markersWritten = new CountDownLatch(1);
        volatile Set<TopicPartition> askedFor;

        MarkersPendingConsumer() {
            super("earliest");
        }

        @Override
        public Map<TopicPartition, OffsetAndMetadata> committed(Set<TopicPartition> partitions, Duration timeout) {
            askedFor = Set.copyOf(partitions);
            asked.countDown();
            try {
                markersWritten.await();
            } catch (InterruptedException e) {
                throw new org.apache.kafka.common.errors.InterruptException(e);
            }
            return super.committed(partitions, timeout);
        }
    }

    /** Counts the transactions begun with it. */
    private static final class TransactionCountingProducer extends MockProducer<String, byte[]> {
        private int begun;

        @Override
        public synchronized void beginTransaction() {
            super.beginTransaction();
            begun++;
        }

        synchronized int begun() {
            return begun;
        }
    }

    /** Its first beginTransaction throws {@code failure}, as a producer left in an error state does. */
    private static final class BeginFailingOnceProducer extends MockProducer<String, byte[]> {
        private final RuntimeException failure;
        private boolean failed;
        private int aborts;

        BeginFailingOnceProducer(RuntimeException failure) {
            this.failure = failure;
        }

        @Override
        public synchronized void beginTransaction() {
            if (!failed) {
                failed = true;
                throw failure;
            }
            super.beginTransaction();
        }

        @Override
        public synchronized void abortTransaction() {
            aborts++; // no transaction is open after the failed begin: a real producer's abort clears its error
        }

        synchronized int aborts() {
            return aborts;
        }

        synchronized List<Map<TopicPartition, OffsetAndMetadata>> committedOffsets() {
            return consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList();
        }
    }

    /**
     * Its commit blocks until the thread is interrupted, then throws Kafka's {@code InterruptException}, as a real
     * producer waiting for the coordinator does; so does an abort on an interrupted thread.
     */
    private static final class CommitBlockingUntilInterruptedProducer extends MockProducer<String, byte[]> {
        private final CountDownLatch inCommit;

        CommitBlockingUntilInterruptedProducer(CountDownLatch inCommit) {
            this.inCommit = inCommit;
        }

        @Override
        public void commitTransaction() {
            inCommit.countDown();
            try {
                new CountDownLatch(1).await();
            } catch (InterruptedException e) {
                throw new org.apache.kafka.common.errors.InterruptException(e);
            }
        }

        @Override
        public synchronized void abortTransaction() {
            if (Thread.currentThread().isInterrupted()) {
                throw new org.apache.kafka.common.errors.InterruptException("interrupted while aborting");
            }
            super.abortTransaction();
        }
    }

    /** Its first commit fails, as one the coordinator refuses, and the transaction is left to abort. */
    private static final class CommitFailingOnceProducer extends MockProducer<String, byte[]> {
        private boolean failed;
        private int aborts;

        @Override
        public synchronized void commitTransaction() {
            if (!failed) {
                failed = true;
                throw new org.apache.kafka.common.KafkaException("transaction could not commit");
            }
            super.commitTransaction();
        }

        /** The offsets of the committed transactions, read under the producer's lock (the loop thread commits). */
        synchronized List<Map<TopicPartition, OffsetAndMetadata>> committedOffsets() {
            return consumerGroupOffsetsHistory().stream().flatMap(byGroup -> byGroup.values().stream()).toList();
        }

        @Override
        public synchronized void abortTransaction() {
            super.abortTransaction();
            aborts++;
        }

        synchronized int aborts() {
            return aborts;
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
        final AtomicInteger wakeups = new AtomicInteger();

        RecordingConsumer() {
            super("earliest");
        }

        @Override
        public void close(CloseOptions options) {
            closedWith = options.timeout();
            super.close(options);
        }

        @Override
        public void wakeup() {
            wakeups.incrementAndGet();
            super.wakeup();
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
