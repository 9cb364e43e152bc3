package io.streamsaga.kafka;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The source's Payment service consumes {@code order-created} and emits {@code payment-processed}. With the
 * exactly-once option, an instance that dies after publishing but before committing leaves no visible
 * output: its restarted successor fences it, handles the order again and commits one output.
 */
class ExactlyOnceTest {
    record OrderCreated(String orderId, long amount) {
    }

    record PaymentProcessed(String orderId) {
    }

    private static final Duration WAIT = Duration.ofSeconds(60);
    /** The service handles every order, also those published before its group first committed. */
    private static final SubscriptionOptions FROM_EARLIEST = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);

    private static EventBus bus(KafkaTransport transport) {
        return EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .build())
                .retryPolicy(RetryPolicy.NONE)
                .build();
    }

    private static KafkaTransport.Builder paymentInstance(String bootstrap) {
        return KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce("payment-service-1")
                // a stalled member leaves the group quickly, so its successor gets the partitions in this test
                .consumerProperty(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 3000);
    }

    @Test
    void crashBetweenConsumeAndPublishCommitYieldsExactlyOneVisibleOutput() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");

        CountDownLatch published = new CountDownLatch(1);
        CountDownLatch crashed = new CountDownLatch(1);
        KafkaTransport first = paymentInstance(bootstrap).build();
        KafkaTransport second = null;
        try (EventBus firstBus = bus(first)) {
            firstBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                firstBus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId()))
                        .toCompletableFuture().join();
                published.countDown();
                // the process "dies" here: the output is written but the transaction never commits
                crashed.await();
            });
            firstBus.publish(orders, "o-1", new OrderCreated("o-1", 100)).toCompletableFuture().join();
            assertTrue(published.await(60, TimeUnit.SECONDS), "the first instance handled the order");
            assertEquals(1, readAll(bootstrap, payments, "read_uncommitted").size(), "the dangling output is in the log");

            second = paymentInstance(bootstrap).build();
            try (EventBus secondBus = bus(second)) {
                secondBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) ->
                        secondBus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId()))
                                .toCompletableFuture().join());
                KafkaTransport successor = second;
                await().atMost(WAIT).until(() -> successor.committedOffsets(group, orders).values().stream()
                        .mapToLong(Long::longValue).sum() == 1);

                List<ConsumerRecord<String, byte[]>> committed = readAll(bootstrap, payments, "read_committed");
                assertEquals(1, committed.size(), "exactly one payment is visible");
                assertEquals("o-1", new ObjectMapper().readTree(committed.get(0).value()).get("orderId").asText());
                assertEquals(2, readAll(bootstrap, payments, "read_uncommitted").size(),
                        "the crashed instance's output was written, and aborted");

                crashed.countDown(); // the zombie wakes up: it is fenced and cannot commit
                await().atMost(WAIT).until(() -> first.subscriptions().stream().noneMatch(KafkaSubscription::isActive));
                assertEquals(1, readAll(bootstrap, payments, "read_committed").size());
                assertFalse(second.subscriptions().isEmpty());
            }
        } finally {
            crashed.countDown();
            first.close();
            if (second != null) {
                second.close();
            }
        }
    }

    /**
     * docs/kafka.md: a handler that throws aborts the transaction and "the batch is handled again from its
     * first record"; the bus's RetryPolicy still ends in a dead letter. The failing record follows a record of
     * its own partition in the same poll batch, whose output the abort discarded: it must be published again.
     */
    @Test
    void aRetriedRecordAfterAnotherOfItsPartitionInOneBatchLosesNoOutputAndIsDeadLetteredAfterItsAttempts() {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service")).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build()) {
            // both are in the log, on one partition, before the group's first poll: they come in one batch
            bus.publish(orders, "k", new OrderCreated("good", 1)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("bad", 2)).toCompletableFuture().join();
            AtomicInteger badAttempts = new AtomicInteger();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                if (event.orderId().equals("bad")) {
                    badAttempts.incrementAndGet();
                    throw new IllegalStateException("card declined");
                }
                bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
            });
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() >= 2);
            assertEquals(3, badAttempts.get(), "the policy's three attempts, then the dead letter");
            assertEquals(1, readAll(bootstrap, orders + ".DLT", "read_committed").size());
            assertEquals(1, readAll(bootstrap, payments, "read_committed").size(), "the good order's payment is committed once");
        } finally {
            transport.close();
        }
    }

    /**
     * EventBus: "one bad message never stops a consumer; nothing is dropped silently". A handler whose own
     * publish Kafka refuses (a 2 MB record: RecordTooLargeException) leaves its transaction unable to send
     * anything, so the dead letter cannot go in that transaction either. After the policy's attempts the
     * record must be dead-lettered (with its dlt-* headers, in the next transaction, with its offset) and its
     * partition move on, as in plain mode, instead of being redelivered for ever with its attempts starting
     * again each time.
     */
    @Test
    void aRecordWhoseHandlerPublishPoisonsTheTransactionIsDeadLetteredAfterItsAttemptsAndThePartitionMovesOn() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        AtomicInteger hugeAttempts = new AtomicInteger();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .build()) {
            // one partition, one batch: the huge order follows a good one and precedes another
            bus.publish(orders, "k", new OrderCreated("before", 1)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("huge", 2)).toCompletableFuture().join();
            bus.publish(orders, "k", new OrderCreated("after", 3)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                String paymentId = event.orderId();
                if (paymentId.equals("huge")) {
                    hugeAttempts.incrementAndGet();
                    paymentId = "x".repeat(2 * 1024 * 1024); // over the producer's max.request.size
                }
                bus.publish(payments, event.orderId(), new PaymentProcessed(paymentId)).toCompletableFuture().join();
            });
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 3);

            List<ConsumerRecord<String, byte[]>> deadLetters = readAll(bootstrap, orders + ".DLT", "read_committed");
            assertEquals(1, deadLetters.size(), "the huge order is dead-lettered once");
            ConsumerRecord<String, byte[]> deadLetter = deadLetters.get(0);
            assertEquals("huge", new ObjectMapper().readTree(deadLetter.value()).get("orderId").asText());
            // Kafka's RecordTooLargeException is not retriable: the policy dead-letters after the first attempt
            assertEquals("1", header(deadLetter, "dlt-attempts"));
            assertEquals("1", header(deadLetter, "dlt-original-offset"));
            assertEquals(group, header(deadLetter, "dlt-original-group"));
            assertEquals("handler-failed", header(deadLetter, "dlt-reason"));
            assertTrue(header(deadLetter, "dlt-error-message").contains("RecordTooLargeException"),
                    header(deadLetter, "dlt-error-message"));
            assertEquals(1, hugeAttempts.get(), "the handler is not called again for a record whose attempts are spent");
            List<String> committedPayments = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : readAll(bootstrap, payments, "read_committed")) {
                committedPayments.add(r.key());
            }
            committedPayments.sort(null); // keyed by order: on different partitions
            assertEquals(List.of("after", "before"), committedPayments, "each good order's payment, once");
        } finally {
            transport.close();
        }
    }

    static String header(ConsumerRecord<String, byte[]> record, String name) {
        org.apache.kafka.common.header.Header header = record.headers().lastHeader(name);
        return header == null ? null : new String(header.value(), java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * A member whose handler outlived {@code max.poll.interval.ms} lost its partition to the group's other
     * member, which handled the record. Its transaction cannot commit (the group no longer knows it): it
     * aborts, so the output is not duplicated, and the member rejoins the group as in plain mode, instead of
     * stopping for good as if a restarted instance had fenced it (docs/kafka.md: only that stops it).
     */
    @Test
    void aMemberThatOutlivedItsPollIntervalWhileAnotherTookItsRecordNeitherDuplicatesTheOutputNorStops() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .consumerProperty(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 3000).build();
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger slowCalls = new AtomicInteger();
        List<String> handledBy = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventBus bus = bus(transport)) {
            bus.publish(orders, "warm-up", new OrderCreated("warm-up", 1)).toCompletableFuture().join();
            for (int i = 0; i < 2; i++) {
                bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                    if (event.orderId().equals("slow") && slowCalls.incrementAndGet() == 1) {
                        release.await(); // outlives max.poll.interval.ms: the group moves its partition on
                    }
                    bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
                    handledBy.add(event.orderId() + "@" + Thread.currentThread().getName());
                });
            }
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 1);
            bus.publish(orders, "slow", new OrderCreated("slow", 2)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> slowCalls.get() == 2 && transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);
            release.countDown();
            bus.publish(orders, "after", new OrderCreated("after", 3)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> handledBy.stream().anyMatch(h -> h.startsWith("after@")));
            List<String> committedPayments = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : readAll(bootstrap, payments, "read_committed")) {
                committedPayments.add(r.key());
            }
            assertEquals(1, committedPayments.stream().filter("slow"::equals).count(), "one payment for the slow order");
            assertEquals(2, transport.subscriptions().stream().filter(KafkaSubscription::isActive).count(),
                    "both members go on: " + transport.subscriptions());
        } finally {
            release.countDown();
            transport.close();
        }
    }

    /**
     * A transaction that cannot commit although every handler returned (a send the bus does not know of, made on the
     * transport past the bus, was refused; a handler's own refused publish fails its handling instead:
     * ExactlyOnceRefusedPublishTest): the batch is aborted and redelivered after redeliveryBackoff (docs/kafka.md), not
     * at once in a busy loop.
     */
    @Test
    void aBatchWhoseTransactionCannotCommitIsRedeliveredAfterTheBackoff() {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        Duration backoff = Duration.ofMillis(1500);
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(backoff).build();
        List<Long> attemptNanos = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventBus bus = bus(transport)) {
            bus.publish(orders, "huge", new OrderCreated("huge", 1)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                attemptNanos.add(System.nanoTime());
                // past the bus, into the batch's transaction, which its refusal leaves unable to commit
                transport.send(io.streamsaga.message.Message.builder(payments).key(event.orderId()).type("payment")
                        .payload(new byte[2 * 1024 * 1024]).build());
            });
            await().atMost(WAIT).until(() -> attemptNanos.size() >= 2);
            long gap = attemptNanos.get(1) - attemptNanos.get(0);
            assertTrue(gap >= backoff.toNanos() * 9 / 10,
                    "redelivered after " + Duration.ofNanos(gap) + ", expected the backoff " + backoff);
            assertTrue(transport.subscriptions().stream().allMatch(KafkaSubscription::isActive));
        } finally {
            transport.close();
        }
    }

    /**
     * An Error the bus passes on (not an AssertionError or StackOverflowError) aborts the batch's transaction
     * and redelivers it after redeliveryBackoff, as an exception does; the consumer keeps running.
     */
    @Test
    void anErrorFromTheHandlerAbortsTheTransactionAndIsRedelivered() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        AtomicInteger errorsLeft = new AtomicInteger(1);
        try (EventBus bus = bus(transport)) {
            bus.publish(orders, "k", new OrderCreated("crash", 1)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
                if (errorsLeft.getAndDecrement() > 0) {
                    throw new NoClassDefFoundError("com/example/Missing");
                }
            });
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() == 1);
            assertEquals(1, readAll(bootstrap, payments, "read_committed").size(), "one payment: the first was aborted");
            assertTrue(transport.subscriptions().stream().allMatch(KafkaSubscription::isActive));
        } finally {
            transport.close();
        }
    }

    /**
     * What a handler left to its batch's outcome ({@code Transport.afterDelivery}) runs on the member's thread once the
     * transaction ended; an action that throws an {@code AssertionError} (an error of its own making, as the bus takes a
     * handler's) is logged as one that throws an exception is: the batch's other actions still run and the member goes on.
     */
    @Test
    void anActionRunOnceTheBatchCommittedThatThrowsAnAssertionErrorStopsNeitherTheOtherActionsNorTheMember() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service")).build();
        CountDownLatch otherActionRan = new CountDownLatch(1);
        CountDownLatch laterRecordHandled = new CountDownLatch(1);
        try (EventBus bus = bus(transport)) {
            bus.publish(orders, "k", new OrderCreated("first", 1)).toCompletableFuture().join();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                if (event.orderId().equals("first")) {
                    transport.afterDelivery(() -> {
                        throw new AssertionError("an action failing its own check");
                    }, () -> { });
                    transport.afterDelivery(otherActionRan::countDown, () -> { });
                } else {
                    laterRecordHandled.countDown();
                }
            });
            assertTrue(otherActionRan.await(WAIT.toSeconds(), TimeUnit.SECONDS), "the batch's other action ran");
            bus.publish(orders, "k", new OrderCreated("later", 1)).toCompletableFuture().join();
            assertTrue(laterRecordHandled.await(WAIT.toSeconds(), TimeUnit.SECONDS), "the member handled a later record");
            assertTrue(transport.subscriptions().stream().allMatch(KafkaSubscription::isActive));
        } finally {
            transport.close();
        }
    }

    /**
     * A subscription re-created in a group after another closed takes the lowest free member number, so its
     * transactional id is the one a restarted instance uses (and fences), not {@code <prefix>.<group>.1}.
     */
    @Test
    void aSubscriptionReCreatedInAGroupReusesTheFreedTransactionalId() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        String prefix = SharedKafkaBroker.unique("payment-service");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap).exactlyOnce(prefix).build();
        try (EventBus bus = bus(transport);
             org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                     Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> { }).close();
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> { });
            Set<String> ids = admin.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                    .map(org.apache.kafka.clients.admin.TransactionListing::transactionalId)
                    .filter(id -> id.startsWith(prefix + "."))
                    .collect(Collectors.toSet());
            assertEquals(Set.of(prefix + "." + group + ".0"), ids);
        } finally {
            transport.close();
        }
    }

    /**
     * A handler that outlives the producer's {@code transaction.timeout.ms}: the broker aborts its transaction
     * and fences the producer's epoch. Neither the output it published before nor (when it publishes again
     * after the abort) the one after may become visible (the one after fails, retriable; otherwise the member
     * aborts the batch instead of committing it), the record must be handled again and its retry's outputs committed once (not dead-lettered),
     * and the subscription must go on consuming, rather than stop as if a restarted instance had fenced it.
     */
    @ParameterizedTest(name = "publishesAfterTheAbort={0}")
    @ValueSource(booleans = {false, true})
    void aHandlerThatOutlivesTheTransactionTimeoutIsAbortedAndRedeliveredAndTheSubscriptionGoesOn(
            boolean publishesAfterTheAbort) throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        String prefix = SharedKafkaBroker.unique("payment-service");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(prefix)
                .producerProperty(org.apache.kafka.clients.producer.ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 1000)
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        CountDownLatch blocked = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger slowCalls = new AtomicInteger();
        List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("payment-processed", 1, PaymentProcessed.class)
                        .build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build();
             org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                     Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                bus.publish(payments, "pre-" + event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
                if (event.orderId().equals("slow") && slowCalls.incrementAndGet() == 1) {
                    blocked.countDown();
                    release.await(); // until the broker has aborted the transaction for its timeout
                }
                if (publishesAfterTheAbort) {
                    bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
                }
                handled.add(event.orderId());
            });
            bus.publish(orders, "slow", new OrderCreated("slow", 1)).toCompletableFuture().join();
            assertTrue(blocked.await(60, TimeUnit.SECONDS), "the handler runs");
            String transactionalId = prefix + "." + group + ".0";
            await().atMost(WAIT).until(() -> admin.describeTransactions(List.of(transactionalId)).all()
                    .get(30, TimeUnit.SECONDS).get(transactionalId).state()
                    == org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT);
            release.countDown();

            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() >= 1);
            bus.publish(orders, "after", new OrderCreated("after", 2)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> handled.contains("after"));
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() >= 2);

            List<String> committedPayments = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : readAll(bootstrap, payments, "read_committed")) {
                committedPayments.add(r.key());
            }
            committedPayments.sort(null);
            assertEquals(publishesAfterTheAbort ? List.of("after", "pre-after", "pre-slow", "slow")
                            : List.of("pre-after", "pre-slow"), committedPayments, "each output once, the aborted ones not");
            assertEquals(2, slowCalls.get(), "the slow order was handled again after the abort");
            assertEquals(0, transport.endOffsets(orders + ".DLT").values().stream().mapToLong(Long::longValue).sum(),
                    "nothing dead-lettered");
            assertTrue(transport.subscriptions().stream().allMatch(KafkaSubscription::isActive),
                    "the subscription goes on: " + transport.subscriptions());
        } finally {
            release.countDown();
            transport.close();
        }
    }

    /**
     * A batch whose handlers publish nothing does not start a transaction at the coordinator until its offsets
     * are sent with the commit, so the broker never aborts it for its timeout: however long its handlers take,
     * it commits once, rather than be aborted and handled again (for ever, when it is always that slow).
     */
    @Test
    void aSlowBatchThatPublishedNothingCommitsOnceAlthoughItOutlivedTheTransactionTimeout() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .producerProperty(org.apache.kafka.clients.producer.ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 1000)
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        AtomicInteger calls = new AtomicInteger();
        try (EventBus bus = bus(transport)) {
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                calls.incrementAndGet();
                // slow work (longer than transaction.timeout.ms) that publishes nothing
                assertFalse(new CountDownLatch(1).await(1200, TimeUnit.MILLISECONDS));
            });
            bus.publish(orders, "k", new OrderCreated("slow", 1)).toCompletableFuture().join();

            await().atMost(WAIT).until(() -> calls.get() > 1 || transport.committedOffsets(group, orders).values()
                    .stream().mapToLong(Long::longValue).sum() >= 1);
            assertEquals(1, calls.get(), "handled once");
            assertEquals(1, transport.committedOffsets(group, orders).values().stream().mapToLong(Long::longValue).sum(),
                    "its offset is committed");
        } finally {
            transport.close();
        }
    }

    /**
     * A member whose transaction the broker aborted for its timeout, and whose transactional id a restarted
     * instance (same prefix) then took, is fenced: it must stop, and leave the id to the restarted instance,
     * also when that instance's own last transaction was aborted (a handler failure, waiting for its
     * redelivery), so that the id's state at the coordinator is an abort, as after a timeout.
     */
    @Test
    void aMemberFencedAfterItsTransactionTimedOutStopsEvenWhenTheFencingInstancesLastTransactionAborted() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        String prefix = SharedKafkaBroker.unique("payment-service");
        String transactionalId = prefix + "." + group + ".0";
        KafkaTransport zombie = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(prefix)
                .producerProperty(org.apache.kafka.clients.producer.ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 1000)
                // its consumer leaves the group while its handler hangs, so the restarted instance gets the partitions
                .consumerProperty(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 2000)
                .redeliveryBackoff(Duration.ofMillis(100)).build();
        KafkaTransport restarted = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(prefix).build();
        CountDownLatch blocked = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch restartedFailed = new CountDownLatch(1);
        try (EventBus zombieBus = bus(zombie);
             EventBus restartedBus = EventBus.builder(restarted)
                     .types(TypeRegistry.builder()
                             .register("order-created", 1, OrderCreated.class)
                             .register("payment-processed", 1, PaymentProcessed.class)
                             .build())
                     // its failed record waits for its redelivery for the rest of the test
                     .retryPolicy(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofMinutes(10))
                             .maxBackoff(Duration.ofMinutes(10)).jitter(0).build())
                     .build();
             org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                     Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            zombieBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                zombieBus.publish(payments, "zombie-" + event.orderId(), new PaymentProcessed(event.orderId()))
                        .toCompletableFuture().join();
                blocked.countDown();
                release.await();
            });
            KafkaSubscription zombieSubscription = zombie.subscriptions().iterator().next();
            zombieBus.publish(orders, "k", new OrderCreated("slow", 1)).toCompletableFuture().join();
            assertTrue(blocked.await(60, TimeUnit.SECONDS), "the handler runs");
            await().atMost(WAIT).until(() -> state(admin, transactionalId)
                    == org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT);

            // the restarted instance takes the id; its handler publishes, fails and waits for its redelivery
            restartedBus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                restartedBus.publish(payments, "restarted-" + event.orderId(), new PaymentProcessed(event.orderId()))
                        .toCompletableFuture().join();
                restartedFailed.countDown();
                throw new IllegalStateException("a downstream service is down");
            });
            assertTrue(restartedFailed.await(60, TimeUnit.SECONDS), "the restarted instance handles the order");
            await().atMost(WAIT).until(() -> state(admin, transactionalId)
                    == org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT);
            KafkaSubscription restartedSubscription = restarted.subscriptions().iterator().next();

            release.countDown(); // the zombie's handler returns: its commit fails, fenced
            await().atMost(WAIT).until(() -> !zombieSubscription.isActive()
                    || state(admin, transactionalId) != org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT);
            assertFalse(zombieSubscription.isActive(), "the fenced member stops");
            assertEquals(org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT, state(admin, transactionalId),
                    "the id stays the restarted instance's");
            assertTrue(restartedSubscription.isActive(), "the restarted instance goes on");
        } finally {
            release.countDown();
            zombie.close();
            restarted.close();
        }
    }

    private static org.apache.kafka.clients.admin.TransactionState state(org.apache.kafka.clients.admin.Admin admin,
                                                                        String transactionalId) throws Exception {
        return admin.describeTransactions(List.of(transactionalId)).all().get(30, TimeUnit.SECONDS)
                .get(transactionalId).state();
    }

    /**
     * A subscription closed from inside its own handler ends after that record, committing it as a close does;
     * its loop is still finishing the batch when close() returns. A subscription created in the group at that
     * moment must not take the closing member's number, and with it its transactional id: its initialisation
     * would fence the closing member, abort the record's output and have it handled again.
     */
    @Test
    void aSubscriptionClosedFromItsHandlerKeepsItsTransactionalIdUntilItsLastBatchIsCommitted() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String payments = SharedKafkaBroker.unique("payment-processed");
        String group = SharedKafkaBroker.unique("payment");
        // subscribe returns without waiting for the group's assignment, which waits for the closing member
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .assignmentTimeout(Duration.ZERO).build();
        CountDownLatch closedInside = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<io.streamsaga.bus.Subscription> first =
                new java.util.concurrent.atomic.AtomicReference<>();
        List<String> handled = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (EventBus bus = bus(transport)) {
            io.streamsaga.bus.EventHandler<OrderCreated> handler = (event, ctx) -> {
                bus.publish(payments, event.orderId(), new PaymentProcessed(event.orderId())).toCompletableFuture().join();
                handled.add(event.orderId());
                if (event.orderId().equals("last") && handled.size() == 1) {
                    first.get().close(); // from inside: the loop ends after this record
                    closedInside.countDown();
                    resume.await();
                }
            };
            first.set(bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, handler));
            bus.publish(orders, "k", new OrderCreated("last", 1)).toCompletableFuture().join();
            assertTrue(closedInside.await(60, TimeUnit.SECONDS), "the handler closed its subscription");
            bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, handler);
            resume.countDown();

            // one key, one partition: a redelivered "last" would come before "after"
            bus.publish(orders, "k", new OrderCreated("after", 2)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> handled.contains("after"));
            // handled, not yet committed: its payment is read_committed once its batch's transaction is
            await().atMost(WAIT).until(() -> transport.committedOffsets(group, orders).values().stream()
                    .mapToLong(Long::longValue).sum() >= 2);
            assertEquals(List.of("last", "after"), handled, "the closing member's last record is handled once");
            List<String> committedPayments = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : readAll(bootstrap, payments, "read_committed")) {
                committedPayments.add(r.key());
            }
            committedPayments.sort(null); // keyed by order: on different partitions
            assertEquals(List.of("after", "last"), committedPayments, "each payment once");
        } finally {
            resume.countDown();
            transport.close();
        }
    }

    /**
     * The claim check counts a closed subscription's group until a listing of the broker's groups made after
     * the close, which from then on answers for it by the group's committed offsets. An exactly-once member's
     * final commit is a transaction: the broker applies its offsets only once the transaction's markers are
     * written, after {@code commitTransaction} returned; a listing right after the close did not see them yet
     * (requireStable does not help: the broker skips the pending partitions), and dropped a group whose only
     * commits were that transaction, so the claim check could release a payload the group resumes before.
     * On this local broker the markers are mostly in before the listing anyway: this checks the promise end to
     * end; {@code ConsumerLoopTest.anExactlyOnceMemberEndsOnlyOnceTheOffsetsOfItsFinalTransactionAreCommitted}
     * holds the markers back.
     */
    @Test
    void aGroupWhoseOnlyCommitIsTheFinalTransactionOfItsClosedSubscriptionIsStillListed() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String group = SharedKafkaBroker.unique("payment");
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap)
                .exactlyOnce(SharedKafkaBroker.unique("payment-service"))
                .consumerGroupsMaxAge(Duration.ZERO).build();
        java.util.concurrent.atomic.AtomicReference<io.streamsaga.bus.Subscription> subscription =
                new java.util.concurrent.atomic.AtomicReference<>();
        CountDownLatch subscribed = new CountDownLatch(1);
        try (EventBus bus = bus(transport)) {
            subscription.set(bus.subscribe(group, orders, OrderCreated.class, FROM_EARLIEST, (event, ctx) -> {
                subscribed.await();
                subscription.get().close(); // from inside: the batch's transaction is the member's final commit
            }));
            subscribed.countDown();
            bus.publish(orders, "k", new OrderCreated("o-1", 1)).toCompletableFuture().join();
            await().atMost(WAIT).until(() -> transport.subscriptions().isEmpty()); // its thread has ended

            assertEquals(Set.of(group), transport.consumerGroups(orders));
            assertEquals(List.of(1L), List.copyOf(transport.committedOffsets(group, orders).values()));
        } finally {
            transport.close();
        }
    }

    /** Everything a plain consumer with the given isolation level reads up to the end of the topic. */
    static List<ConsumerRecord<String, byte[]>> readAll(String bootstrap, String topic, String isolation) {
        Map<String, Object> config = Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config, new StringDeserializer(), new ByteArrayDeserializer())) {
            Set<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(info -> new TopicPartition(topic, info.partition())).collect(Collectors.toSet());
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            List<ConsumerRecord<String, byte[]>> records = new ArrayList<>();
            await().atMost(WAIT).until(() -> {
                consumer.poll(Duration.ofMillis(100)).forEach(records::add);
                return partitions.stream().allMatch(p -> consumer.position(p) >= end.get(p));
            });
            return records;
        }
    }
}
