package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.UnaryOperator;

import static io.streamsaga.kafka.ExactlyOnceTest.header;
import static io.streamsaga.kafka.ExactlyOnceTest.readAll;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * "Nothing is lost, one bad message never stops a consumer": a record just under the producer's
 * {@code max.request.size} whose handler fails had a dead letter (the record with the dlt-* headers added) over the
 * limit, which Kafka refused every time (RecordTooLargeException), so its partition was redelivered for ever and the
 * records after it never handled. Its redelivery now dead-letters it without its payload, naming where the original
 * is; in plain and in exactly-once mode alike. One still too large without its payload (a key or headers near the limit)
 * was refused at every redelivery for ever; each redelivery now leaves out one thing more, the original's headers and
 * then its key, keeping the dead-letter headers that point at the original.
 */
class DeadLetterTooLargeTest {
    record OrderCreated(String orderId, long amount) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** Characters of a key or header (or payload) that keep a record under max.request.size, but not its dead letter. */
    private static final int NEAR_LIMIT = 1_047_000;
    /** With the dlt-* headers it takes the dead letter over the limit the record itself fits. */
    private static final String DECLINED = "card declined: " + "x".repeat(3_000);

    @Test
    void aRecordWhoseDeadLetterIsTooLargeForKafkaIsDeadLetteredWithoutItsPayloadAndItsPartitionMovesOn() {
        deadLettersWithoutThePayload(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    @Test
    void inExactlyOnceModeTooARecordWhoseDeadLetterIsTooLargeIsDeadLetteredWithoutItsPayload() {
        deadLettersWithoutThePayload(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    private static void deadLettersWithoutThePayload(KafkaTransport transport) {
        ConsumerRecord<String, byte[]> deadLetter = deadLetterOfAFailingRecord(transport, "k", Map.of(),
                "x".repeat(NEAR_LIMIT));

        assertNull(deadLetter.value());
        assertNotNull(header(deadLetter, "dlt-payload-omitted"));
        assertNull(header(deadLetter, "dlt-headers-omitted"));
        assertEquals("k", deadLetter.key());
    }

    @Test
    void aRecordWhoseDeadLetterIsStillTooLargeWithoutItsPayloadIsDeadLetteredWithoutTheOriginalsHeaders() {
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        ConsumerRecord<String, byte[]> deadLetter = deadLetterOfAFailingRecord(transport, "k",
                Map.of("baggage", "b".repeat(NEAR_LIMIT)), "declined");

        assertNull(deadLetter.value());
        assertNull(header(deadLetter, "baggage"), "the original's headers are left out");
        assertNotNull(header(deadLetter, "dlt-payload-omitted"));
        assertNotNull(header(deadLetter, "dlt-headers-omitted"));
        assertNull(header(deadLetter, "dlt-key-omitted"));
        assertEquals("k", deadLetter.key(), "the key is kept, so the dead letter goes where the key's others go");
    }

    @Test
    void aRecordWhoseDeadLetterIsStillTooLargeWithoutItsHeadersIsDeadLetteredWithoutItsKey() {
        deadLetteredWithoutItsKey(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    @Test
    void inExactlyOnceModeTooARecordWhoseDeadLetterIsStillTooLargeWithoutItsHeadersIsDeadLetteredWithoutItsKey() {
        deadLetteredWithoutItsKey(KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(100)).build());
    }

    private static void deadLetteredWithoutItsKey(KafkaTransport transport) {
        String hugeKey = "k".repeat(NEAR_LIMIT);
        ConsumerRecord<String, byte[]> deadLetter = deadLetterOfAFailingRecord(transport, hugeKey, Map.of(), "declined");

        assertNull(deadLetter.value());
        assertTrue(deadLetter.key() == null, "the key is left out");
        assertNotNull(header(deadLetter, "dlt-payload-omitted"));
        assertNotNull(header(deadLetter, "dlt-headers-omitted"));
        String keyOmitted = header(deadLetter, "dlt-key-omitted");
        assertTrue(keyOmitted != null && keyOmitted.contains("(" + NEAR_LIMIT + " characters)"),
                String.valueOf(keyOmitted).substring(0, Math.min(200, String.valueOf(keyOmitted).length())));
    }

    @Test
    void aRecordWhoseHugeTypeKeepsItsDeadLetterTooLargeWithoutItsKeyIsDeadLetteredWithoutItsType() {
        // A type no registry knows, near max.request.size: undecodable, and its dead letter too large in every form
        // that kept the type, so the partition was held for ever, logged at ERROR.
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers())
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        // the record fits max.request.size (1 MiB) with its few headers; its dead letter, with the dead-letter ones
        // (some 800 bytes however much it leaves out: the error message is short here), does not
        String hugeType = "t".repeat(1_048_576 - 300);
        List<String> handled = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.NONE)
                .build()) {
            bus.publish(Message.builder(orders).key("k").type(hugeType).payload(new byte[] {'{', '}'}).build())
                    .toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("after", 2)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (event, ctx) -> handled.add(event.orderId()));
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);

            assertEquals(List.of("after"), handled);
            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(1, deadLetters.size(), "one dead letter, the one that fitted");
            ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
            assertEquals(orders + ".DLT", header(deadLetter, "event-type"));
            String typeOmitted = header(deadLetter, "dlt-type-omitted");
            assertTrue(typeOmitted != null && typeOmitted.contains("(" + hugeType.length() + " characters)"),
                    String.valueOf(typeOmitted).substring(0, Math.min(200, String.valueOf(typeOmitted).length())));
            assertNotNull(header(deadLetter, "dlt-key-omitted"));
            assertEquals("undecodable", header(deadLetter, "dlt-reason"));
            assertEquals("0", header(deadLetter, "dlt-original-offset"));
            assertNull(deadLetter.value());
        } finally {
            transport.close();
        }
    }

    @Test
    void aRebalanceThatGivesThePartitionBackKeepsTheStepItsTooLargeDeadLetterReached() throws InterruptedException {
        keepsTheStepThroughARebalance(DeadLetterTooLargeTest::eager);
    }

    @Test
    void inExactlyOnceModeTooARebalanceThatGivesThePartitionBackKeepsTheStepItsTooLargeDeadLetterReached()
            throws InterruptedException {
        // There the refused dead letter aborts the batch's transaction, and the record waits as after any abort.
        keepsTheStepThroughARebalance(builder -> eager(builder).exactlyOnce(SharedKafkaBroker.unique("payment-service")));
    }

    @Test
    void underTheConsumerGroupProtocolARebalanceKeepsTheStepItsTooLargeDeadLetterReached() throws InterruptedException {
        // KIP-848 (group.protocol=consumer): the broker assigns, and revokes only the partitions that move, so the
        // member's partition is not revoked when the second member joins; its member epoch moves on all the same.
        keepsTheStepThroughARebalance(DeadLetterTooLargeTest::consumerProtocol);
    }

    @Test
    void underTheConsumerGroupProtocolInExactlyOnceModeARebalanceKeepsTheStepItsTooLargeDeadLetterReached()
            throws InterruptedException {
        keepsTheStepThroughARebalance(builder -> consumerProtocol(builder)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service")));
    }

    @Test
    void underTheConsumerGroupProtocolAPartitionThatMovesIsHandledAfreshByItsNewMemberAndOneThatStaysKeepsItsStep()
            throws Exception {
        // KIP-848 revokes incrementally: a second member of the group on the same topic takes one of the first
        // member's two partitions (the broker chooses which), each waiting at a record whose dead letter is too
        // large. The one that stays keeps its step, attempts and wait; the one that moves is a new partition to its
        // new member, whose handler runs the record again.
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        SharedKafkaBroker.createTopics(2, orders);
        List<String> keys = List.of(keyOfPartition(0, 2), keyOfPartition(1, 2));
        AtomicLong skew = new AtomicLong();
        KafkaTransport transport = consumerProtocol(KafkaTransport.builder().bootstrapServers(bootstrap)
                .nanoClock(() -> System.nanoTime() + skew.get())
                .redeliveryBackoff(Duration.ofHours(1))).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        Map<String, AtomicInteger> failures = new ConcurrentHashMap<>();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.NONE)
                .build()) {
            for (String key : keys) {
                bus.publish(orders, key, new OrderCreated("x".repeat(NEAR_LIMIT), 1)).toCompletableFuture().join();
                bus.publish(orders, key, new OrderCreated("after-" + key, 2)).toCompletableFuture().join();
            }
            EventHandler<OrderCreated> handler = (event, ctx) -> {
                if (!event.orderId().startsWith("after")) {
                    failures.computeIfAbsent(ctx.message().key(), k -> new AtomicInteger()).incrementAndGet();
                    throw new IllegalStateException(DECLINED);
                }
                handled.add(event.orderId());
            };
            SubscriptionOptions fromEarliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
            bus.subscribe(group, orders, OrderCreated.class, fromEarliest, handler);
            await().atMost(WAIT).until(() -> failures.size() == 2); // each partition waits at its record
            KafkaSubscription first = transport.subscriptions().iterator().next();
            bus.subscribe(group, orders, OrderCreated.class, fromEarliest, handler);
            // the moved record is handled again by its new member, and waits there too
            await().atMost(WAIT).until(() -> failures.values().stream().mapToInt(AtomicInteger::get).sum() == 3);

            await().atMost(WAIT).until(() -> endingEveryWait(skew)
                    && transport.committedOffsets(group, orders).values().stream().mapToLong(Long::longValue).sum() == 4);
            assertTrue(first.isActive());
            assertEquals(List.of(1, 2), failures.values().stream().map(AtomicInteger::get).sorted().toList(),
                    "the record that stayed ran its handler once, the one that moved once more, at its new member");
            assertEquals(keys.stream().map(key -> "after-" + key).sorted().toList(), handled.stream().sorted().toList());
            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(2, deadLetters.size(), "one dead letter each, the one that fitted");
            deadLetters.forEach(deadLetter -> assertNull(deadLetter.value(), "at the first redelivery: without its payload"));
        } finally {
            transport.close();
        }
    }

    /**
     * Moves the members' clock ({@code skew}) an hour on, so that every record's redelivery wait armed by then is over;
     * returns true. A member arms the wait once the record's dead letter was refused, after its handler failed, which
     * the test cannot see: called at each look of an await, it ends a wait armed before or after any of them.
     */
    private static boolean endingEveryWait(AtomicLong skew) {
        skew.addAndGet(Duration.ofHours(1).toNanos());
        return true;
    }

    /**
     * Whether {@code group} is stable with {@code members} members, each at the group's epoch (KIP-848: its heartbeat
     * answered with the epoch, its partitions reconciled; classic: no epochs, every member in the generation).
     */
    private static boolean stableWithEveryMemberAtItsEpoch(Admin admin, String group, int members) throws Exception {
        ConsumerGroupDescription description = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                .get();
        return description.groupState() == GroupState.STABLE && description.members().size() == members
                && description.members().stream().allMatch(member -> member.memberEpoch().equals(description.groupEpoch()));
    }

    /** A key Kafka's default partitioner puts in {@code partition} of a topic of {@code partitions}. */
    private static String keyOfPartition(int partition, int partitions) {
        for (int i = 0; ; i++) {
            String key = "k-" + i;
            if (Utils.toPositive(Utils.murmur2(key.getBytes(java.nio.charset.StandardCharsets.UTF_8))) % partitions
                    == partition) {
                return key;
            }
        }
    }

    /**
     * An eager assignor (the first of Kafka's default list, RangeAssignor) revokes every partition at every rebalance
     * of the group, also those it gives back to the same member.
     */
    private static KafkaTransport.Builder eager(KafkaTransport.Builder builder) {
        return builder.consumerProperty("partition.assignment.strategy", RangeAssignor.class.getName());
    }

    private static KafkaTransport.Builder consumerProtocol(KafkaTransport.Builder builder) {
        return builder.consumerProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
    }

    /**
     * The step the record's dead letter reached was forgotten at a rebalance that revoked its partition and gave it
     * straight back, with the record's attempts, so its dead letter was tried whole again, refused, and the record
     * waited again, and a group rebalancing more often than that (members joining, one per topic of an aggregator)
     * never dead-lettered the record. The record's wait survives the rebalance too, so the test ends it on the
     * members' clock once the rebalance is over (the second member handled its topic's record): a single redelivery
     * must dead-letter the record.
     */
    private static void keepsTheStepThroughARebalance(UnaryOperator<KafkaTransport.Builder> protocol)
            throws InterruptedException {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String other = SharedKafkaBroker.unique("order-paid");
        String group = SharedKafkaBroker.unique("payment");
        AtomicLong skew = new AtomicLong();
        KafkaTransport transport = protocol.apply(KafkaTransport.builder().bootstrapServers(bootstrap)
                .nanoClock(() -> System.nanoTime() + skew.get())
                .redeliveryBackoff(Duration.ofHours(1))).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        AtomicInteger failures = new AtomicInteger();
        CountDownLatch failed = new CountDownLatch(1);
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.NONE)
                .build();
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            bus.publish(orders, "k", new OrderCreated("x".repeat(NEAR_LIMIT), 1)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("after", 2)).toCompletableFuture().join();
            bus.publish(other, "k", new OrderCreated("paid", 3)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (event, ctx) -> {
                        if (!event.orderId().equals("after")) {
                            failures.incrementAndGet();
                            failed.countDown();
                            throw new IllegalStateException(DECLINED);
                        }
                        handled.add(event.orderId());
                    });
            // The dead letter is refused within the delivery that failed, and the member meets the rebalance at a
            // later poll of the same thread: once the handler failed, the step is learnt before the revoke.
            assertTrue(failed.await(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
            // A second member of the group, on another topic: the assignment that gives it its topic's partitions ends
            // a rebalance of the group that the first member was in (eager: its partition revoked before, and given
            // back in it). Its first assignment may be none (KIP-848 assigns what it subscribed to a heartbeat later).
            CountDownLatch paidHandled = new CountDownLatch(1);
            try (KafkaSubscription second = (KafkaSubscription) transport.subscribe(group, TopicPattern.of(other),
                    StartPosition.EARLIEST, record -> paidHandled.countDown())) {
                assertTrue(paidHandled.await(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
                // Under KIP-848 the first member, whose partitions stay, takes the group's new epoch only at its own
                // next heartbeat, which may come after the second member got its partitions: the clock moves once the
                // group is stable, every member at its epoch, so that the record's redelivery follows the rebalance.
                await().atMost(WAIT).until(() -> stableWithEveryMemberAtItsEpoch(admin, group, 2));

                await().atMost(WAIT).until(() -> endingEveryWait(skew)
                        && transport.committedOffsets(group, orders).values().stream().mapToLong(Long::longValue).sum() == 2);
            }
            assertEquals(List.of("after"), handled);
            assertEquals(1, failures.get(), "its attempts kept: dead-lettered without its handler running again");
            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(1, deadLetters.size());
            assertNull(deadLetters.get(0).value(), "the step learnt before the rebalance: without its payload");
            assertNotNull(header(deadLetters.get(0), "dlt-payload-omitted"));
        } finally {
            transport.close();
        }
    }

    /**
     * Publishes a record of {@code key}, {@code headers} and order id {@code declined} whose handler fails, and one after
     * it of the same key, which the handler takes; waits for both to be committed and returns the one dead letter,
     * checking that it points at the original (topic, partition, offset, group, error).
     */
    private static ConsumerRecord<String, byte[]> deadLetterOfAFailingRecord(KafkaTransport transport, String key,
                                                                              Map<String, String> headers,
                                                                              String declined) {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        List<String> handled = new CopyOnWriteArrayList<>();
        List<Integer> failedIn = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .retryPolicy(RetryPolicy.NONE)
                .build()) {
            bus.publish(orders, key, new OrderCreated(declined, 1), headers).toCompletableFuture().join();
            bus.publish(orders, key, new OrderCreated("after", 2)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (event, ctx) -> {
                        if (!event.orderId().equals("after")) {
                            failedIn.add(ctx.partition());
                            throw new IllegalStateException(DECLINED);
                        }
                        handled.add(event.orderId());
                    });
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);

            assertEquals(List.of("after"), handled);
            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(1, deadLetters.size(), "one dead letter, the one that fitted");
            ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
            assertEquals(orders, header(deadLetter, "dlt-original-topic"));
            assertEquals(Integer.toString(failedIn.get(0)), header(deadLetter, "dlt-original-partition"));
            assertEquals("0", header(deadLetter, "dlt-original-offset"));
            assertEquals(group, header(deadLetter, "dlt-original-group"));
            assertEquals("handler-failed", header(deadLetter, "dlt-reason"));
            assertEquals(IllegalStateException.class.getName(), header(deadLetter, "dlt-error-class"));
            assertEquals(DECLINED, header(deadLetter, "dlt-error-message"));
            assertEquals("order-created", header(deadLetter, "event-type"));
            return deadLetter;
        } finally {
            transport.close();
        }
    }
}
