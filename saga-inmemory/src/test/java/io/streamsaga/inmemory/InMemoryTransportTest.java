package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;
import io.streamsaga.spi.RedeliverLater;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the in-memory log does beyond the transport contract: retention, concurrency, its own API. */
class InMemoryTransportTest {

    private static Message message(String topic, String key, String payload) {
        return Message.builder(topic).key(key).type("text").payload(payload).build();
    }

    private static List<Object> payloads(List<Message> messages) {
        return messages.stream().map(Message::payload).toList();
    }

    @Test
    void retentionByCountDropsTheOldestAndReplayStartsAtTheFirstRetained() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).maxRecordsPerPartition(3)
                .deliveryMode(DeliveryMode.MANUAL).build();
        for (int i = 0; i < 5; i++) {
            transport.send(message("log", "k", "m" + i));
        }
        assertEquals(Map.of(0, 2L), transport.startOffsets("log"));
        assertEquals(Map.of(0, 5L), transport.endOffsets("log"));
        assertEquals(List.of("m2", "m3", "m4"), payloads(transport.messages("log")));

        List<Object> replayed = new ArrayList<>();
        transport.subscribe("replay", TopicPattern.of("log"), StartPosition.EARLIEST,
                record -> replayed.add(record.message().payload()));
        transport.drainAll();
        assertEquals(List.of("m2", "m3", "m4"), replayed);
    }

    @Test
    void retentionByAgeFollowsTheTransportsClock() {
        VirtualScheduler time = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).retention(Duration.ofMinutes(1))
                .clock(time.clock()).deliveryMode(DeliveryMode.MANUAL).build();
        transport.send(message("log", "k", "old"));
        time.advance(Duration.ofSeconds(30));
        transport.send(message("log", "k", "recent"));
        time.advance(Duration.ofSeconds(45));
        transport.send(message("log", "k", "new"));

        assertEquals(List.of("recent", "new"), payloads(transport.messages("log")));
        assertEquals(Duration.ofMinutes(1), transport.retentionHorizon().orElseThrow());
    }

    @Test
    void aRecordOlderThanTheRetentionIsNeitherReplayedNorDeliveredNorListedAlsoWithNothingAppendedSince() {
        // The retention is the replay horizon that a deduplication window and a claim-check expiry must cover: a
        // record older than it must not be delivered, though no later send to its partition dropped it.
        VirtualScheduler time = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).retention(Duration.ofHours(1))
                .clock(time.clock()).deliveryMode(DeliveryMode.MANUAL).build();
        List<Object> lagging = new ArrayList<>();
        transport.subscribe("lagging", TopicPattern.of("log"), StartPosition.LATEST,
                record -> lagging.add(record.message().payload()));
        transport.send(message("log", "k", "old"));
        time.advance(Duration.ofHours(2));

        assertEquals(List.of(), payloads(transport.messages("log")));
        assertEquals(Map.of(0, 1L), transport.startOffsets("log"));
        assertEquals(0, transport.pendingCount());
        List<Object> replayed = new ArrayList<>();
        transport.subscribe("replay", TopicPattern.of("log"), StartPosition.EARLIEST,
                record -> replayed.add(record.message().payload()));
        transport.drainAll();
        assertEquals(List.of(), replayed);
        assertEquals(List.of(), lagging);

        transport.send(message("log", "k", "new"));
        transport.drainAll();
        assertEquals(List.of("new"), replayed);
        assertEquals(List.of("new"), lagging);
    }

    @Test
    void aGroupThatFellBehindRetentionSkipsToTheFirstRetainedRecord() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).maxRecordsPerPartition(2)
                .deliveryMode(DeliveryMode.MANUAL).build();
        transport.send(message("log", "k", "before"));
        List<Object> handled = new ArrayList<>();
        transport.subscribe("slow", TopicPattern.of("log"), StartPosition.LATEST, record -> handled.add(record.message().payload()));
        for (int i = 0; i < 5; i++) {
            transport.send(message("log", "k", "m" + i));
        }
        assertEquals(2, transport.pendingCount());
        transport.drainAll();
        assertEquals(List.of("m3", "m4"), handled);
        assertEquals(Map.of(0, 6L), transport.committedOffsets("slow", "log"));
        assertEquals(0, transport.pendingCount());
    }

    @Test
    void concurrentProducersLoseNothingAndKeepTheirOwnOrderInAPartition() throws Exception {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        int producers = 4;
        int perProducer = 5_000;
        ExecutorService pool = Executors.newFixedThreadPool(producers);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> done = new ArrayList<>();
        for (int p = 0; p < producers; p++) {
            String producer = "p" + p;
            done.add(pool.submit(() -> {
                start.await();
                for (int i = 0; i < perProducer; i++) {
                    transport.send(message("log", "same-key", producer + ":" + i));
                }
                return null;
            }));
        }
        start.countDown();
        for (Future<?> future : done) {
            future.get(30, TimeUnit.SECONDS);
        }
        pool.shutdown();

        List<Message> log = transport.messages("log");
        assertEquals(producers * perProducer, log.size());
        Map<String, Integer> last = new HashMap<>();
        for (Message m : log) {
            String[] parts = ((String) m.payload()).split(":");
            int seq = Integer.parseInt(parts[1]);
            int previous = last.getOrDefault(parts[0], -1);
            assertEquals(previous + 1, seq, "order of " + parts[0]);
            last.put(parts[0], seq);
        }
    }

    @Test
    void aConsumerReadsWhileProducersAppendAndGrowTheLog() throws Exception {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2).maxRecordsPerPartition(100_000).build()) {
            int count = 20_000;
            CountDownLatch all = new CountDownLatch(count);
            List<Integer> seen = new CopyOnWriteArrayList<>();
            transport.subscribe("reader", TopicPattern.of("numbers"), StartPosition.EARLIEST, record -> {
                seen.add((Integer) record.message().payload());
                all.countDown();
            });
            for (int i = 0; i < count; i++) {
                transport.send(Message.builder("numbers").key("k").type("n").payload(i).build());
            }
            assertTrue(all.await(30, TimeUnit.SECONDS), "delivered " + seen.size());
            for (int i = 0; i < count; i++) {
                assertEquals(i, seen.get(i));
            }
        }
    }

    @Test
    void aRecordWhoseHandlerThrowsWaitsOnItsOwnPartitionWhileTheMembersOtherPartitionsKeepFlowing() throws Exception {
        // the wait is measured on the transport's nanoTime seam, which stands still until the test moves it: the
        // refused record cannot come back while the other partition's chain goes by, however slow the machine
        AtomicLong nanos = new AtomicLong();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2).nanoClock(nanos::get).build()) {
            int chain = 20;
            List<Object> waitingPartition = new CopyOnWriteArrayList<>(); // partition 0's deliveries, in order
            AtomicBoolean refuse = new AtomicBoolean(true);
            AtomicInteger refusalsWhenTheChainEnded = new AtomicInteger(-1);
            CountDownLatch chainEnded = new CountDownLatch(1);
            CountDownLatch lastOfTheOtherPartition = new CountDownLatch(1);
            CountDownLatch secondOfTheWaitingPartition = new CountDownLatch(1);
            transport.subscribe("g", TopicPattern.of("t"), StartPosition.EARLIEST, record -> {
                Object payload = record.message().payload();
                if (record.message().key().equals("b")) { // partition 0: refused, as a redrive's letter past its end
                    waitingPartition.add(payload);
                    if (refuse.get()) {
                        throw RedeliverLater.declined(Duration.ofMillis(100), new IllegalStateException("not this run's"));
                    }
                    if (payload.equals("second")) {
                        secondOfTheWaitingPartition.countDown();
                    }
                    return;
                }
                if (payload.equals("last")) {
                    lastOfTheOtherPartition.countDown();
                    return;
                }
                // partition 1: each record of the chain publishes the next one, which a later pass delivers
                int link = Integer.parseInt((String) payload);
                if (link < chain) {
                    transport.send(message("t", "a", Integer.toString(link + 1)));
                } else {
                    refusalsWhenTheChainEnded.set(waitingPartition.size());
                    chainEnded.countDown();
                }
            });
            assertEquals(0, transport.send(message("t", "b", "refused")).toCompletableFuture().join().partition());
            assertEquals(1, transport.send(message("t", "a", "1")).toCompletableFuture().join().partition());

            assertTrue(chainEnded.await(30, TimeUnit.SECONDS));
            // a pause of the whole member after each refusal let one link by per refusal (20 links, 20 refusals)
            assertEquals(1, refusalsWhenTheChainEnded.get(),
                    "refusals while " + chain + " links of the other partition went by");

            // short of its wait, the refused record still waits, and a later record of its partition with it
            assertEquals(0, transport.send(message("t", "b", "second")).toCompletableFuture().join().partition());
            nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(99));
            transport.send(message("t", "a", "last"));
            assertTrue(lastOfTheOtherPartition.await(30, TimeUnit.SECONDS));
            assertEquals(List.of("refused"), waitingPartition);

            // once its wait is over, it comes again, before the later record of its partition
            refuse.set(false);
            nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(1));
            assertTrue(secondOfTheWaitingPartition.await(30, TimeUnit.SECONDS));
            assertEquals(List.of("refused", "refused", "second"), waitingPartition);
        }
    }

    @Test
    void aRecordDeclinedForADelayWaitsThatDelayNotAFixedPause() throws Exception {
        SteppedNanoClock nanos = new SteppedNanoClock();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2).nanoClock(nanos).build()) {
            List<Object> waitingPartition = new CopyOnWriteArrayList<>(); // partition 0's deliveries, in order
            AtomicBoolean refuse = new AtomicBoolean(true);
            CountDownLatch refused = new CountDownLatch(1);
            CountDownLatch deliveredAgain = new CountDownLatch(2);
            Map<Object, CountDownLatch> barriers = Map.of("1", new CountDownLatch(1), "2", new CountDownLatch(1));
            transport.subscribe("g", TopicPattern.of("t"), StartPosition.EARLIEST, record -> {
                Object payload = record.message().payload();
                if (record.message().key().equals("b")) {
                    waitingPartition.add(payload);
                    refused.countDown();
                    deliveredAgain.countDown();
                    if (refuse.get()) {
                        throw RedeliverLater.declined(Duration.ofSeconds(10), new IllegalStateException("not this run's"));
                    }
                    return;
                }
                barriers.get(payload).countDown();
            });
            assertEquals(0, transport.send(message("t", "b", "refused")).toCompletableFuture().join().partition());
            assertTrue(refused.await(30, TimeUnit.SECONDS));

            // past the fixed pause of a failure (100 ms), short of the 10 s asked: two records of the other partition,
            // the second delivered by a pass begun after the first was handled, so after the clock moved
            nanos.advance(Duration.ofSeconds(1));
            assertEquals(1, transport.send(message("t", "a", "1")).toCompletableFuture().join().partition());
            assertTrue(barriers.get("1").await(30, TimeUnit.SECONDS));
            transport.send(message("t", "a", "2"));
            assertTrue(barriers.get("2").await(30, TimeUnit.SECONDS));
            assertEquals(List.of("refused"), waitingPartition, "delivered again before the delay asked");

            // 10 s from the refusal: the consumer reads the clock for its wait after the handler counted down, so
            // possibly after the move above
            refuse.set(false);
            nanos.advance(Duration.ofSeconds(10));
            assertTrue(deliveredAgain.await(30, TimeUnit.SECONDS));
            assertEquals(List.of("refused", "refused"), waitingPartition);
        }
    }

    @Test
    void aRecordDeclinedForANegativeDelayTooLongForNanosecondsIsDeliveredAgainByAConsumerThatGoesOn() throws Exception {
        // a transport counts RedeliverLater's delay in nanoseconds: one of Long.MIN_VALUE seconds is taken as zero
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build()) {
            List<Object> deliveries = new CopyOnWriteArrayList<>();
            AtomicBoolean refuse = new AtomicBoolean(true);
            CountDownLatch deliveredAgain = new CountDownLatch(2);
            transport.subscribe("g", TopicPattern.of("t"), StartPosition.EARLIEST, record -> {
                deliveries.add(record.message().payload());
                deliveredAgain.countDown();
                if (refuse.getAndSet(false)) {
                    throw RedeliverLater.declined(Duration.ofSeconds(Long.MIN_VALUE), new IllegalStateException("past"));
                }
            });
            transport.send(message("t", "b", "refused"));

            assertTrue(deliveredAgain.await(30, TimeUnit.SECONDS), "delivered again: " + deliveries);
            assertEquals(List.of("refused", "refused"), deliveries);
        }
    }

    @Test
    void aConsumerWhoseOnlyRecordsWaitParksUntilTheWaitEndsUnwokenBySendsToTheWaitingPartition() throws Exception {
        // Counted on the clock the waits are measured on, which the consumer reads once per pass over its partitions
        // (and once more to park): a consumer woken by each send to its waiting partition, or polling without parking
        // while that partition's record waits, reads it again and again, though there is nothing it may deliver.
        SteppedNanoClock nanos = new SteppedNanoClock();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2).nanoClock(nanos).build()) {
            int later = 50;
            List<Object> waitingPartition = new CopyOnWriteArrayList<>(); // partition 0's deliveries, in order
            AtomicBoolean refuse = new AtomicBoolean(true);
            AtomicReference<Thread> consumer = new AtomicReference<>();
            CountDownLatch refused = new CountDownLatch(1);
            CountDownLatch other = new CountDownLatch(1);
            CountDownLatch allDelivered = new CountDownLatch(1 + 1 + later);
            transport.subscribe("g", TopicPattern.of("t"), StartPosition.EARLIEST, record -> {
                consumer.set(Thread.currentThread());
                if (record.message().key().equals("b")) {
                    waitingPartition.add(record.message().payload());
                    refused.countDown();
                    allDelivered.countDown();
                    if (refuse.get()) {
                        throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
                    }
                    return;
                }
                other.countDown();
            });
            assertEquals(0, transport.send(message("t", "b", "refused")).toCompletableFuture().join().partition());
            assertTrue(refused.await(30, TimeUnit.SECONDS));
            awaitParked(consumer.get());
            int readsWhenParked = nanos.reads();

            for (int i = 0; i < later; i++) {
                assertEquals(0, transport.send(message("t", "b", "later-" + i)).toCompletableFuture().join().partition());
            }
            assertEquals(1, transport.send(message("t", "a", "other")).toCompletableFuture().join().partition());
            assertTrue(other.await(30, TimeUnit.SECONDS));
            awaitParked(consumer.get());
            // the record of the other partition: a pass delivering it, one finding nothing, the read to park (3; room
            // for a spurious return of the park), where a consumer spinning before it parks reads it 64 times
            int reads = nanos.reads() - readsWhenParked;
            assertTrue(reads <= 6, "clock reads (passes) for " + later + " sends to the waiting partition and one to "
                    + "the other: " + reads);
            assertEquals(List.of("refused"), waitingPartition);

            // the wait's end wakes it (here the clock's move unparks the consumer, as the time reached would)
            refuse.set(false);
            nanos.advance(Duration.ofMinutes(1));
            assertTrue(allDelivered.await(30, TimeUnit.SECONDS));
            assertEquals(2 + later, waitingPartition.size());
        }
    }

    @Test
    void aWaitOfADeclinedRecordEndsWithThePartitionSoItsMemberGivenItBackDeliversTheNextRecordAtOnce() throws Exception {
        // One partition, topic "u" (its hash is odd): the second member of the group takes it, and gives it back at its
        // close. As on Kafka, where a revoked partition's pause goes with it, the first member's wait ends when the
        // partition leaves it: the record it declined was handled by the other member meanwhile.
        SteppedNanoClock nanos = new SteppedNanoClock(); // stands still: a wait of a minute never ends here
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).nanoClock(nanos).build()) {
            List<Object> first = new CopyOnWriteArrayList<>();
            CountDownLatch refused = new CountDownLatch(1);
            CountDownLatch next = new CountDownLatch(1);
            transport.subscribe("g", TopicPattern.of("u"), StartPosition.EARLIEST, record -> {
                first.add(record.message().payload());
                if (record.message().payload().equals("declined")) {
                    refused.countDown();
                    throw RedeliverLater.declined(Duration.ofMinutes(1), new IllegalStateException("not this run's"));
                }
                next.countDown();
            });
            transport.send(message("u", "k", "declined"));
            assertTrue(refused.await(30, TimeUnit.SECONDS));

            CountDownLatch handledByTheOther = new CountDownLatch(1);
            var second = transport.subscribe("g", TopicPattern.of("u"), StartPosition.EARLIEST, record -> {
                if (record.message().payload().equals("declined")) {
                    handledByTheOther.countDown();
                }
            });
            assertTrue(handledByTheOther.await(30, TimeUnit.SECONDS));
            second.close();

            transport.send(message("u", "k", "next"));
            assertTrue(next.await(30, TimeUnit.SECONDS), "the first member's deliveries: " + first);
            assertEquals(List.of("declined", "next"), first);
        }
    }

    private static void awaitParked(Thread thread) {
        await().atMost(Duration.ofSeconds(30)).until(() -> thread.getState() == Thread.State.TIMED_WAITING
                || thread.getState() == Thread.State.WAITING);
    }

    /**
     * A {@code nanoTime} that stands still until the test moves it; a move unparks each thread that read it, as the
     * time reached would end a park measured on it. Counts its reads.
     */
    private static final class SteppedNanoClock implements LongSupplier {
        private final AtomicLong nanos = new AtomicLong();
        private final AtomicInteger reads = new AtomicInteger();
        private final Set<Thread> readers = ConcurrentHashMap.newKeySet();

        @Override
        public long getAsLong() {
            readers.add(Thread.currentThread());
            reads.incrementAndGet();
            return nanos.get();
        }

        void advance(Duration by) {
            nanos.addAndGet(by.toNanos());
            readers.forEach(LockSupport::unpark);
        }

        int reads() {
            return reads.get();
        }
    }

    @Test
    void drainAllIsOnlyForManualMode() {
        try (InMemoryTransport transport = InMemoryTransport.create()) {
            ConfigurationException e = assertThrows(ConfigurationException.class, transport::drainAll);
            assertEquals("drainAll() needs DeliveryMode.MANUAL, but this transport is ASYNC", e.getMessage());
        }
    }

    @Test
    void drainStopsAfterItsBoundLeavingTheRestPendingEvenWhenHandlersAnswerEachOtherForEver() {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1)
                .deliveryMode(DeliveryMode.MANUAL).build()) {
            List<Object> handled = new ArrayList<>();
            transport.subscribe("echo", TopicPattern.of("log"), StartPosition.EARLIEST, record -> {
                handled.add(record.message().payload());
                transport.send(message("log", "k", "again")); // for ever: drainAll() would never return
            });
            transport.send(message("log", "k", "first"));

            assertEquals(3, transport.drain(3));
            assertEquals(List.of("first", "again", "again"), handled);
            assertEquals(1, transport.pendingCount());
            assertEquals(1, transport.drain(1));

            ConfigurationException refused = assertThrows(ConfigurationException.class, () -> transport.drain(0));
            assertEquals("maxRecords must be at least 1, but was 0", refused.getMessage());
        }
    }

    @Test
    void successiveBoundedDrainsTakeTurnsAcrossGroupsSoAGroupThatKeepsReceivingStarvesNoOther() {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1)
                .deliveryMode(DeliveryMode.MANUAL).build()) {
            Map<String, Integer> handled = new HashMap<>();
            for (String topic : List.of("pings", "pongs")) {
                // Each group's handler publishes to its own topic again: each always has a record pending.
                transport.subscribe(topic + "-group", TopicPattern.of(topic), StartPosition.EARLIEST, record -> {
                    handled.merge(topic, 1, Integer::sum);
                    transport.send(message(topic, "k", "again"));
                });
                transport.send(message(topic, "k", "first"));
            }

            for (int i = 0; i < 10; i++) {
                assertEquals(1, transport.drain(1));
            }

            assertEquals(Map.of("pings", 5, "pongs", 5), handled, "each call resumes after where the previous one stopped");
        }
    }

    @Test
    void successiveBoundedDrainsTakeTurnsAcrossPartitions() {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2)
                .deliveryMode(DeliveryMode.MANUAL).build()) {
            Map<Integer, Integer> handled = new HashMap<>();
            transport.subscribe("echo", TopicPattern.of("log"), StartPosition.EARLIEST, record -> {
                handled.merge(record.partition(), 1, Integer::sum);
                transport.send(message("log", record.message().key(), "again")); // same key: same partition
            });
            // Two keys in different partitions ("a" and "b" hash to 97 and 98).
            assertEquals(1, transport.send(message("log", "a", "first")).toCompletableFuture().join().partition());
            assertEquals(0, transport.send(message("log", "b", "first")).toCompletableFuture().join().partition());

            for (int i = 0; i < 10; i++) {
                assertEquals(1, transport.drain(1));
            }

            assertEquals(Map.of(0, 5, 1, 5), handled);
        }
    }

    @Test
    void drainCountsARecordOncePerSubscriptionAndNotWhenItsHandlerThrows() {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(2)
                .deliveryMode(DeliveryMode.MANUAL).build()) {
            List<String> handled = new ArrayList<>();
            transport.subscribe("a", TopicPattern.of("log"), StartPosition.EARLIEST,
                    record -> handled.add("a:" + record.message().payload()));
            transport.subscribe("b", TopicPattern.of("log"), StartPosition.EARLIEST, record -> {
                if (record.message().payload().equals("bad")) {
                    throw new IllegalStateException("refused");
                }
                handled.add("b:" + record.message().payload());
            });
            transport.send(message("log", "k", "bad"));

            assertEquals(1, transport.drain(5), "a's delivery counts, b's failed one does not");
            assertEquals(List.of("a:bad"), handled);
            assertEquals(1, transport.pendingCount(), "b's record stays pending");

            transport.send(message("log", "k", "good"));
            // b's partition fails again first, so one drain stops there for b; a takes "good".
            assertEquals(1, transport.drain(5));
            assertEquals(List.of("a:bad", "a:good"), handled);
        }
    }

    @Test
    void aClosedTransportRefusesToSendAndSubscribe() {
        InMemoryTransport transport = InMemoryTransport.create();
        transport.close();
        CompletionException sent = assertThrows(CompletionException.class,
                () -> transport.send(message("log", "k", "late")).toCompletableFuture().join());
        assertInstanceOf(PublishException.class, sent.getCause());
        assertThrows(ConfigurationException.class,
                () -> transport.subscribe("g", TopicPattern.of("log"), StartPosition.LATEST, record -> { }));
    }

    @Test
    void builderRejectsBadSettingsQuotingThem() {
        assertEquals("partitions must be 1 or more, but was 0", assertThrows(ConfigurationException.class,
                () -> InMemoryTransport.builder().partitions(0)).getMessage());
        assertEquals("maxRecordsPerPartition must be 0 or more, but was -1", assertThrows(ConfigurationException.class,
                () -> InMemoryTransport.builder().maxRecordsPerPartition(-1)).getMessage());
        assertEquals("retention must be positive, but was PT0S", assertThrows(ConfigurationException.class,
                () -> InMemoryTransport.builder().retention(Duration.ZERO)).getMessage());
    }

    @Test
    void sameKeyAlwaysGoesToTheSamePartition() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(8).deliveryMode(DeliveryMode.MANUAL).build();
        int first = transport.send(message("t", "customer-42", "a")).toCompletableFuture().join().partition();
        for (int i = 0; i < 10; i++) {
            assertEquals(first, transport.send(message("t", "customer-42", "b" + i)).toCompletableFuture().join().partition());
        }
        assertTrue(transport.topics().contains("t"));
    }

    @Test
    void keysMapToTheirHashModuloThePartitionCountWhetherOrNotItIsAPowerOfTwo() {
        // Keys with negative and positive hash codes; 8 partitions take the mask path, 6 the division.
        List<String> keys = List.of("customer-42", "sku-7", "polygenelubricants", "GydZG_", "DESIGNING WORKHOUSES", "");
        for (int partitions : new int[] {8, 6, 1}) {
            InMemoryTransport transport = InMemoryTransport.builder().partitions(partitions)
                    .deliveryMode(DeliveryMode.MANUAL).build();
            for (String key : keys) {
                assertEquals(Math.floorMod(key.hashCode(), partitions),
                        transport.send(message("t", key, "x")).toCompletableFuture().join().partition(),
                        key + " (hash " + key.hashCode() + ") over " + partitions + " partitions");
            }
        }
    }
}
