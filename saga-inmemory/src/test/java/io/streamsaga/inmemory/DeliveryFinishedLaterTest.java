package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.OrderPayments.NotRegistered;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.PendingDelivery;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import static io.streamsaga.inmemory.OrderPayments.acknowledgedInto;
import static io.streamsaga.inmemory.OrderPayments.answeringPayments;
import static io.streamsaga.inmemory.OrderPayments.brokerAnswering;
import static io.streamsaga.inmemory.OrderPayments.bus;
import static io.streamsaga.inmemory.OrderPayments.manualTransport;
import static io.streamsaga.inmemory.OrderPayments.onOrder;
import static io.streamsaga.inmemory.OrderPayments.orderAndDrain;
import static io.streamsaga.inmemory.OrderPayments.requestPayment;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.doReturn;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;

/**
 * A transport that takes over the rest of a delivery whose handler's publishes are in flight
 * ({@code Transport.finishLater}, as Kafka's plain mode with {@code awaitPublishesPerBatch} does): the bus
 * acknowledges the record only when the transport finishes it and the publishes completed, and a failed one is the
 * attempt's failure then (retried per the policy, then dead-lettered naming the publish's topic). The arrangement,
 * order-created handled by publishing payment-requested, is {@link OrderPayments}.
 */
class DeliveryFinishedLaterTest {

    private final InMemoryTransport real = manualTransport();
    /** The rests of deliveries the transport took over, in turn. */
    private final List<PendingDelivery> rests = new CopyOnWriteArrayList<>();
    /** The topics of the messages acknowledged, for a bus that was given {@code acknowledgedInto(acknowledged)}. */
    private final List<String> acknowledged = new CopyOnWriteArrayList<>();

    /** {@link #real}, its sends to payment-requested returning {@code pending} in turn, finishing later into {@link #rests}. */
    private InMemoryTransport finishingLater(List<CompletableFuture<RecordPosition>> pending) {
        AtomicInteger sends = new AtomicInteger();
        InMemoryTransport transport = answeringPayments(real, message -> pending.get(sends.getAndIncrement()));
        doAnswer(call -> rests.add(call.getArgument(0))).when(transport).finishLater(any());
        doReturn(true).when(transport).mayFinishLater();
        return transport;
    }

    @Test
    void aDeliveryTheTransportFinishesLaterIsAcknowledgedOnlyOnceItFinishedAndItsPublishesCompleted() throws Exception {
        CompletableFuture<RecordPosition> inFlight = new CompletableFuture<>();
        EventBus bus = bus(finishingLater(List.of(inFlight))).interceptor(acknowledgedInto(acknowledged)).build();
        onOrder(bus, (event, ctx) -> requestPayment(bus, event));

        orderAndDrain(bus, real);

        assertEquals(1, rests.size(), "the handler returned with its publish in flight: the transport took the rest");
        assertTrue(acknowledged.isEmpty(), "not acknowledged before the transport finished the delivery");
        inFlight.complete(new RecordPosition("payment-requested", 0, 0));
        rests.get(0).finish();
        assertEquals(List.of("order-created"), acknowledged);
        assertTrue(real.messages("order-created.DLT").isEmpty());
    }

    @Test
    void theProcessingTimeOfADeliveryFinishedLaterEndsWhenItsPublishesCompletedNotWhenTheTransportFinishedIt()
            throws Exception {
        // the transport finishes a delivery after the rest of its batch (Kafka's awaitPublishesPerBatch): the
        // processing time counted up to then, other records' handling and the wait for the batch included
        CompletableFuture<RecordPosition> inFlight = new CompletableFuture<>();
        List<Duration> processingTimes = new CopyOnWriteArrayList<>();
        EventBus bus = bus(finishingLater(List.of(inFlight))).metrics(new MetricsRecorder() {
            @Override
            public void eventProcessed(String topic, String group, Duration latency) {
                processingTimes.add(latency);
            }
        }).build();
        onOrder(bus, (event, ctx) -> requestPayment(bus, event));

        bus.publish(OrderPayments.ORDER_CREATED, "o-1", new OrderPayments.OrderCreated("o-1"));
        long beforeDelivery = System.nanoTime();
        real.drainAll();
        inFlight.complete(new RecordPosition("payment-requested", 0, 0));
        long handled = System.nanoTime() - beforeDelivery; // the delivery's own handling and publish: within this
        // the rest of the batch, before the transport finishes the delivery: a gap longer than that, on the clock
        long gapFrom = System.nanoTime();
        while (System.nanoTime() - gapFrom <= handled) {
            Thread.onSpinWait();
        }
        rests.get(0).finish();

        assertEquals(1, processingTimes.size());
        assertTrue(processingTimes.get(0).toNanos() <= handled,
                processingTimes.get(0) + " measured, the handling took at most " + Duration.ofNanos(handled));
    }

    @Test
    void aFailedPublishOfADeliveryFinishedLaterIsRetriedPerThePolicyThenDeadLetteredNamingItsTopic() throws Exception {
        List<CompletableFuture<RecordPosition>> pending = List.of(new CompletableFuture<>(), new CompletableFuture<>());
        EventBus bus = bus(finishingLater(pending))
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).build();
        AtomicInteger attempts = new AtomicInteger();
        onOrder(bus, (event, ctx) -> {
            attempts.incrementAndGet();
            requestPayment(bus, event);
        });

        orderAndDrain(bus, real);
        pending.get(0).completeExceptionally(new PublishException("payment-requested", "broker unavailable", null, true));
        rests.get(0).finish(); // the failed publish fails attempt 1, which the policy retries
        assertEquals(2, rests.size(), "attempt 2's publish is in flight too, its delivery finished later as well");
        assertTrue(real.messages("order-created.DLT").isEmpty());
        pending.get(1).completeExceptionally(new PublishException("payment-requested", "broker unavailable", null, true));
        rests.get(1).finish(); // attempt 2 fails on its own publish: the policy's attempts are spent

        assertEquals(2, attempts.get(), "the failed publish failed the attempt, which the policy retried");
        List<Message> dead = real.messages("order-created.DLT");
        assertEquals(1, dead.size());
        assertEquals("handler-failed", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals("2", dead.get(0).headers().get(MessageHeaders.DLT_ATTEMPTS));
        assertTrue(dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains("payment-requested"),
                dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE));
    }

    @Test
    void aTransportThatDoesNotSayItMayFinishDeliveriesLaterIsNeverOfferedOneAndTheBusWaitsItself() throws Exception {
        // Transport.mayFinishLater() false (the default; Kafka without awaitPublishesPerBatch): the bus offers no rest,
        // allocating nothing for it, and waits for the handler's publish before it acknowledges the record
        CompletableFuture<RecordPosition> inFlight = new CompletableFuture<>();
        InMemoryTransport transport = answeringPayments(real, message -> inFlight);
        EventBus bus = bus(transport).interceptor(acknowledgedInto(acknowledged)).build();
        CountDownLatch published = new CountDownLatch(1);
        onOrder(bus, (event, ctx) -> {
            requestPayment(bus, event);
            published.countDown(); // in flight when publish returned: the bus waits for it after the handler
        });
        Thread broker = brokerAnswering(published, () -> inFlight.complete(new RecordPosition("payment-requested", 0, 0)));

        orderAndDrain(bus, real);
        broker.join();

        verify(transport, never()).finishLater(any());
        assertEquals(List.of("order-created"), acknowledged);
    }

    @Test
    void aHandlerWrappedByAnIdempotentConsumerWaitsForItsPublishesItselfSoItsDeliveryIsNotFinishedLater()
            throws Exception {
        // the IdempotentConsumer awaits the handler's publishes before it marks the key done (EventBus.awaitPublishes):
        // none is left in flight when the handler returns, so the transport is offered no rest (per-record wait)
        CompletableFuture<RecordPosition> inFlight = new CompletableFuture<>();
        EventBus bus = bus(finishingLater(List.of(inFlight))).interceptor(acknowledgedInto(acknowledged)).build();
        IdempotentConsumer idempotent = IdempotentConsumer.builder(bus,
                InMemoryDeduplicationStore.builder().build()).build();
        CountDownLatch published = new CountDownLatch(1);
        onOrder(bus, idempotent.wrap((event, ctx) -> {
            requestPayment(bus, event);
            published.countDown();
        }));
        Thread broker = brokerAnswering(published, () -> inFlight.complete(new RecordPosition("payment-requested", 0, 0)));

        orderAndDrain(bus, real);
        broker.join();

        assertTrue(rests.isEmpty(), "no rest offered: the IdempotentConsumer waited for the publish");
        assertEquals(List.of("order-created"), acknowledged);
    }

    @Test
    void aPublishFailedAlreadyWhenTheHandlerReturnsFailsTheAttemptAtOnceAndNoRestIsOffered() throws Exception {
        // Transport.finishLater is asked only for a delivery with a publish not completed yet: one the bus refused
        // already (a class the registry lacks) fails the attempt at once, as without the option, rather than being
        // deferred with its records' later ones handled meanwhile (and handled again after a seek back)
        EventBus bus = bus(finishingLater(List.of())).build();
        onOrder(bus, (event, ctx) -> bus.publish("payment-requested", event.orderId(), new NotRegistered(event.orderId())));

        orderAndDrain(bus, real);

        assertTrue(rests.isEmpty(), "no rest offered for a publish that failed already");
        List<Message> dead = real.messages("order-created.DLT");
        assertEquals(1, dead.size(), "the refused publish failed the attempt at once: dead-lettered, not deferred");
        assertEquals("handler-failed", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
    }
}
