package io.streamsaga.bus;

import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.TransportRecord;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A transport whose publishes made in a delivery go into that delivery's transaction (Kafka's exactly-once mode): the
 * bus does not wait for a handler's publish still in flight when the handler returns, and when the transport withdraws
 * the delivery (its transaction aborted) with that publish refused for good, the refusal is the attempt's failure, as
 * an awaited publish's is: the record's next delivery dead-letters it, naming the publish's topic, without calling the
 * handler again. A retriable failure leaves the record to be handled again. Each record refused in a batch is
 * dead-lettered once and the batch commits, whatever the partitions, and a record beside them counts its own attempts.
 * The transport is driven by hand, on the test's thread.
 */
class PublishRefusedInDeliveryTransactionTest {
    private static final String ORDERS = "orders";
    private static final String AUDIT = "audit";

    /**
     * A {@link RecordingTransport} whose publishes go into the delivery's transaction; a send to {@link #AUDIT} stays in
     * flight until the test completes it, and {@link #abort} withdraws the deliveries.
     */
    private static final class TransactionalTransport extends ForwardingTransport {
        final RecordingTransport recording;
        final List<CompletableFuture<RecordPosition>> auditSends = new ArrayList<>();
        final List<Runnable> withdrawn = new ArrayList<>();
        final List<Runnable> kept = new ArrayList<>();

        TransactionalTransport() {
            this(new RecordingTransport());
        }

        private TransactionalTransport(RecordingTransport recording) {
            super(recording);
            this.recording = recording;
        }

        @Override
        public boolean redeliversPerPartition() {
            return true;
        }

        @Override
        public boolean publishesInDeliveryTransaction() {
            return true;
        }

        @Override
        public void afterDelivery(Runnable kept, Runnable withdrawn) {
            this.kept.add(kept);
            this.withdrawn.add(withdrawn);
        }

        /** The transaction aborts: every delivery of it is withdrawn. */
        void abort() {
            withdrawn.forEach(Runnable::run);
            withdrawn.clear();
            kept.clear();
        }

        /** The transaction commits: every delivery of it stays handled. */
        void commit() {
            kept.forEach(Runnable::run);
            kept.clear();
            withdrawn.clear();
        }

        /** Delivers {@code record} to the subscription, on the calling thread. */
        void deliver(TransportRecord record) throws Exception {
            recording.registrations.get(0).handler().handle(record);
        }

        /** The dead letters sent (and not aborted), each as the original's id and its attempts. */
        List<String> deadLetters() {
            return recording.sent.stream().filter(m -> m.topic().equals(ORDERS + MessageHeaders.DEAD_LETTER_SUFFIX))
                    .map(m -> m.headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID) + "#"
                            + m.headers().get(MessageHeaders.DLT_ATTEMPTS))
                    .toList();
        }

        @Override
        public CompletionStage<RecordPosition> send(Message message) {
            CompletionStage<RecordPosition> sent = super.send(message);
            if (!message.topic().equals(AUDIT)) {
                return sent;
            }
            CompletableFuture<RecordPosition> inFlight = new CompletableFuture<>();
            auditSends.add(inFlight);
            return inFlight;
        }

        /** Delivers {@link #ORDER} to the subscription, on the calling thread. */
        void deliverOrder() throws Exception {
            deliver(ORDER);
        }

        List<Message> sent() {
            return recording.sent;
        }
    }

    private static final TransportRecord ORDER = new TransportRecord(
            Message.builder(ORDERS).id("order-1").key("k").type("order").payload("o-1").build(), "payment", 0, 7);

    private static Message audit(Message order) {
        return Message.builder(AUDIT).key("k").type("audit").payload("audit of " + order.payload()).build();
    }

    /**
     * A bus over {@code transport}, retrying a record 3 times at once, whose group payment handles each order by
     * telling {@code handling} (the order and its attempt; it may throw, failing the attempt) and then publishing the
     * order's audit, not awaited: left to the delivery's transaction.
     */
    private static EventBus auditing(TransactionalTransport transport, BiConsumer<Message, Integer> handling) {
        EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build();
        bus.subscribe("payment", ORDERS, Message.class, (order, ctx) -> {
            handling.accept(order, ctx.attempt());
            bus.publish(audit(order));
        });
        return bus;
    }

    @Test
    void aPublishRefusedForGoodInTheWithdrawnTransactionDeadLettersItsRecordAtItsNextDeliveryWithoutHandlingIt()
            throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        try (EventBus bus = auditing(transport, (order, attempt) -> attempts.add(attempt))) {

            transport.deliverOrder(); // returns: the publish is left to the transaction
            assertEquals(List.of(1), attempts);
            transport.auditSends.get(0).completeExceptionally(
                    new PublishException(AUDIT, "refused as too large", null, false));
            transport.abort();
            transport.deliverOrder(); // the batch handled again

            assertEquals(List.of(1), attempts, "not handled again");
            List<Message> deadLetters = transport.sent().stream()
                    .filter(m -> m.topic().equals(ORDERS + MessageHeaders.DEAD_LETTER_SUFFIX)).toList();
            assertEquals(1, deadLetters.size());
            Map<String, String> headers = deadLetters.get(0).headers();
            assertEquals("handler-failed", headers.get(MessageHeaders.DLT_REASON));
            assertEquals("1", headers.get(MessageHeaders.DLT_ATTEMPTS));
            assertTrue(headers.get(MessageHeaders.DLT_ERROR_MESSAGE).contains("'" + AUDIT + "'"),
                    headers.get(MessageHeaders.DLT_ERROR_MESSAGE));
        }
    }

    @Test
    void aPublishFailedRetriablyInTheWithdrawnTransactionLeavesItsRecordToBeHandledAgain() throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        try (EventBus bus = auditing(transport, (order, attempt) -> attempts.add(attempt))) {

            transport.deliverOrder();
            // a timeout, or a record aborted only with its transaction
            transport.auditSends.get(0).completeExceptionally(new PublishException(AUDIT, "timed out", null, true));
            transport.abort();
            transport.deliverOrder();

            assertEquals(List.of(1, 1), attempts, "handled again, as a batch whose transaction aborted is");
            assertTrue(transport.sent().stream().noneMatch(m -> m.topic().equals(ORDERS + MessageHeaders.DEAD_LETTER_SUFFIX)));
        }
    }

    @Test
    void aPublishStillInFlightWhenTheHandlerReturnsIsNotWaitedFor() throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        try (EventBus bus = auditing(transport, (order, attempt) -> { })) {

            transport.deliverOrder(); // would wait for ever for the audit send in plain mode

            assertEquals(1, transport.auditSends.size());
            assertEquals(1, transport.withdrawn.size(), "the delivery's publishes are looked at if it is withdrawn");
        }
    }

    private static final TransportRecord ORDER_2 = new TransportRecord(
            Message.builder(ORDERS).id("order-2").key("k").type("order").payload("o-2").build(), "payment", 0, 8);
    private static final TransportRecord ORDER_2_OF_PARTITION_1 = new TransportRecord(
            ORDER_2.message(), "payment", 1, 8);

    @Test
    void twoRecordsOfAPartitionWhosePublishesAreRefusedAreBothDeadLetteredOnceAndTheBatchCommits() throws Exception {
        assertTwoRefusedRecordsAreDeadLetteredOnceAndTheBatchCommits(ORDER_2);
    }

    @Test
    void twoRecordsOfTwoPartitionsWhosePublishesAreRefusedAreBothDeadLetteredOnceAndTheBatchCommits() throws Exception {
        assertTwoRefusedRecordsAreDeadLetteredOnceAndTheBatchCommits(ORDER_2_OF_PARTITION_1);
    }

    /**
     * {@link #ORDER} and {@code second} in one batch, each handler's publish refused for good (the first of a
     * transaction's refused, the others aborted with it, as Kafka's producer reports them): the batch aborts while a
     * record's publish is refused, each refused record is dead-lettered at the next handling, and the dead letter of
     * one stays in the batch's next transaction when that one aborts for the other's refusal.
     */
    private static void assertTwoRefusedRecordsAreDeadLetteredOnceAndTheBatchCommits(TransportRecord second)
            throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<String> handled = new CopyOnWriteArrayList<>();
        try (EventBus bus = auditing(transport, (order, attempt) -> handled.add(order.id() + "#" + attempt))) {
            boolean committed = false;
            for (int round = 0; round < 6 && !committed; round++) {
                int sentBefore = transport.sent().size();
                int auditsBefore = transport.auditSends.size();
                transport.deliver(ORDER);
                transport.deliver(second);
                List<CompletableFuture<RecordPosition>> made =
                        transport.auditSends.subList(auditsBefore, transport.auditSends.size());
                if (made.isEmpty()) {
                    committed = true;
                    transport.commit();
                    break;
                }
                made.get(0).completeExceptionally(new PublishException(AUDIT, "refused as too large", null, false));
                made.subList(1, made.size()).forEach(f -> f.completeExceptionally(
                        new PublishException(AUDIT, "aborted with its transaction", null, true)));
                transport.abort();
                transport.sent().subList(sentBefore, transport.sent().size()).clear(); // aborted with it
            }

            assertTrue(committed, "the batch commits; handled: " + handled);
            // order-2's first handling was aborted with order-1's refusal, its second refused in turn
            assertEquals(List.of("order-1#1", "order-2#1", "order-2#1"), handled);
            assertEquals(List.of("order-1#1", "order-2#1"), transport.deadLetters());

            transport.deliver(ORDER); // met again after the commit (a rebalance): its refusal was forgotten then
            assertEquals("order-1#1", handled.get(handled.size() - 1), "handled again, not dead-lettered again");
            assertEquals(2, transport.deadLetters().size());
        }
    }

    @Test
    void aLaterRecordFailingRetriablyBesideARefusedPublishIsDeadLetteredAfterItsAttempts() throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<String> handled = new CopyOnWriteArrayList<>();
        try (EventBus bus = auditing(transport, (order, attempt) -> { // order-1's audit refused every time
            handled.add(order.id() + "#" + attempt);
            if (order.id().equals("order-2")) {
                throw new IllegalStateException("downstream unavailable"); // retriable, every time
            }
        })) {
            boolean committed = false;
            for (int round = 0; round < 8 && !committed; round++) {
                int sentBefore = transport.sent().size();
                int auditsBefore = transport.auditSends.size();
                boolean failed = false;
                try {
                    transport.deliver(ORDER);
                    transport.deliver(ORDER_2);
                } catch (RedeliverLater e) {
                    failed = true; // the batch stops and aborts
                }
                List<CompletableFuture<RecordPosition>> made =
                        transport.auditSends.subList(auditsBefore, transport.auditSends.size());
                made.forEach(f -> f.completeExceptionally(new PublishException(AUDIT, "refused as too large", null, false)));
                if (made.isEmpty() && !failed) {
                    committed = true;
                    transport.commit();
                    break;
                }
                transport.abort();
                transport.sent().subList(sentBefore, transport.sent().size()).clear(); // aborted with it
            }

            assertTrue(committed, "the batch commits; handled: " + handled);
            assertEquals(List.of("order-1#1", "order-2#1", "order-2#2", "order-2#3"), handled);
            assertEquals(List.of("order-1#1", "order-2#3"), transport.deadLetters());
        }
    }

    @Test
    void aRefusedRecordMetAgainAfterItsPartitionWasHandledElsewhereIsHandledAgain() throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        try (EventBus bus = auditing(transport, (order, attempt) -> attempts.add(attempt))) {
            transport.deliverOrder();
            transport.auditSends.get(0).completeExceptionally(
                    new PublishException(AUDIT, "refused as too large", null, false));
            transport.abort();

            transport.recording.registrations.get(0).handler().forgetPartition(ORDERS, 0); // revoked, then back
            transport.deliverOrder();

            assertEquals(List.of(1, 1), attempts, "its attempts start again, as after any rebalance");
            assertEquals(List.of(), transport.deadLetters());
        }
    }
}
