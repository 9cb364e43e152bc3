package io.streamsaga.bus;

import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.TransportRecord;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A transport whose publishes made in a delivery go into that delivery's transaction (Kafka's exactly-once mode): the
 * bus does not wait for a handler's publish still in flight when the handler returns, and when the transport withdraws
 * the delivery (its transaction aborted) with that publish refused for good, the refusal is the attempt's failure, as
 * an awaited publish's is: the record's next delivery dead-letters it, naming the publish's topic, without calling the
 * handler again. A retriable failure leaves the record to be handled again. The transport is driven by hand, on the
 * test's thread.
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
            this.withdrawn.add(withdrawn);
        }

        /** The transaction aborts: every delivery of it is withdrawn. */
        void abort() {
            withdrawn.forEach(Runnable::run);
            withdrawn.clear();
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
            recording.registrations.get(0).handler().handle(ORDER);
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

    @Test
    void aPublishRefusedForGoodInTheWithdrawnTransactionDeadLettersItsRecordAtItsNextDeliveryWithoutHandlingIt()
            throws Exception {
        TransactionalTransport transport = new TransactionalTransport();
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build()) {
            bus.subscribe("payment", ORDERS, Message.class, (order, ctx) -> {
                attempts.add(ctx.attempt());
                bus.publish(audit(order)); // not awaited
            });

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
        try (EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .build()) {
            bus.subscribe("payment", ORDERS, Message.class, (order, ctx) -> {
                attempts.add(ctx.attempt());
                bus.publish(audit(order));
            });

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
        try (EventBus bus = EventBus.builder(transport).build()) {
            bus.subscribe("payment", ORDERS, Message.class, (order, ctx) -> bus.publish(audit(order)));

            transport.deliverOrder(); // would wait for ever for the audit send in plain mode

            assertEquals(1, transport.auditSends.size());
            assertEquals(1, transport.withdrawn.size(), "the delivery's publishes are looked at if it is withdrawn");
        }
    }
}
