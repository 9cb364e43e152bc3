package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.inmemory.OrderPayments.NotRegistered;
import io.streamsaga.inmemory.OrderPayments.PaymentRequested;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.streamsaga.inmemory.OrderPayments.answeringPayments;
import static io.streamsaga.inmemory.OrderPayments.brokerAnswering;
import static io.streamsaga.inmemory.OrderPayments.bus;
import static io.streamsaga.inmemory.OrderPayments.manualTransport;
import static io.streamsaga.inmemory.OrderPayments.onOrder;
import static io.streamsaga.inmemory.OrderPayments.orderAndDrain;
import static io.streamsaga.inmemory.OrderPayments.refusingThePaymentOnce;
import static io.streamsaga.inmemory.OrderPayments.requestPayment;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * EventBus's promise "nothing is dropped silently" for what a handler publishes: a publish made on the delivering
 * thread inside a handler is part of the delivery, acknowledged only once it completed; one that fails fails the
 * handling (retried per the policy, then dead-lettered naming the publish), whether or not the handler awaited its
 * stage. The arrangement, order-created handled by publishing payment-requested, is {@link OrderPayments}.
 */
class HandlerPublishFailureTest {

    @Test
    void aPublishOfAnUnregisteredClassThatTheHandlerIgnoresDeadLettersTheHandledEvent() {
        InMemoryTransport transport = manualTransport();
        EventBus bus = bus(transport).build();
        onOrder(bus, (event, ctx) -> bus.publish("payment-requested", event.orderId(), new NotRegistered(event.orderId())));

        orderAndDrain(bus, transport);

        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size(), "the event whose handler's publish failed must not be acknowledged as handled");
        assertEquals("handler-failed", dead.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals("1", dead.get(0).headers().get(MessageHeaders.DLT_ATTEMPTS),
                "an unregistered class is bad input: not retried");
        String error = dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE);
        assertTrue(error.contains("payment-requested") && error.contains(NotRegistered.class.getName()), error);
        assertEquals(PublishException.class.getName(), dead.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
    }

    @Test
    void aRetriablePublishFailureRetriesTheHandlerAndItsSecondPublishIsKept() {
        InMemoryTransport real = manualTransport();
        EventBus bus = bus(refusingThePaymentOnce(real))
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build();
        AtomicInteger attempts = new AtomicInteger();
        onOrder(bus, (event, ctx) -> {
            attempts.incrementAndGet();
            requestPayment(bus, event);
        });

        orderAndDrain(bus, real);

        assertEquals(2, attempts.get(), "the failed publish must fail the attempt, which the policy retries");
        assertEquals(1, real.messages("payment-requested").size());
        assertTrue(real.messages("order-created.DLT").isEmpty());
    }

    @Test
    void aPublishThatFailsAfterTheHandlerReturnedDeadLettersTheHandledEvent() throws Exception {
        InMemoryTransport real = manualTransport();
        CompletableFuture<RecordPosition> pending = new CompletableFuture<>();
        CountDownLatch handlerReturned = new CountDownLatch(1);
        // in flight, as a Kafka producer's send is until the broker answers
        EventBus bus = bus(answeringPayments(real, message -> pending)).retryPolicy(RetryPolicy.NONE).build();
        AtomicReference<Boolean> doneWhenReturned = new AtomicReference<>();
        onOrder(bus, (event, ctx) -> {
            requestPayment(bus, event);
            doneWhenReturned.set(pending.isDone());
            handlerReturned.countDown();
        });
        Thread broker = brokerAnswering(handlerReturned, // the broker answers once the handler returned
                () -> pending.completeExceptionally(new PublishException("payment-requested", "record refused", null, false)));

        orderAndDrain(bus, real);
        broker.join();

        assertEquals(Boolean.FALSE, doneWhenReturned.get(), "the publish was still in flight when the handler returned");
        List<Message> dead = real.messages("order-created.DLT");
        assertEquals(1, dead.size(), "the event must not be acknowledged before its handler's publish completed");
        assertTrue(dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains("record refused"));
    }

    @Test
    void aRefusedPublishWhoseMessageTheHandlerSendsAgainUnderItsIdIsAnswered() {
        InMemoryTransport real = manualTransport();
        List<Message> refused = new java.util.ArrayList<>();
        EventBus bus = bus(SizeLimitedTransport.over(real, () -> 200, refused)).retryPolicy(RetryPolicy.NONE).build();
        onOrder(bus, (event, ctx) -> {
            Message whole = Message.builder("audit").id("audit-" + event.orderId()).type("audit")
                    .payload("x".repeat(500)).build();
            try {
                bus.publish(whole).toCompletableFuture().join();
            } catch (java.util.concurrent.CompletionException tooLarge) {
                // the handler answers the refusal itself: the same message, smaller
                bus.publish(whole.toBuilder().payload("see the order").build()).toCompletableFuture().join();
            }
        });

        orderAndDrain(bus, real);

        assertEquals(1, refused.size());
        assertEquals(List.of("see the order"), real.messages("audit").stream().map(Message::payload).toList());
        assertTrue(real.messages("order-created.DLT").isEmpty(), "the refusal was answered by the handler");
    }

    @Test
    void anIdempotentHandlersFailedPublishIsRetriedNotSkippedAsDone() {
        InMemoryTransport real = manualTransport();
        EventBus bus = bus(refusingThePaymentOnce(real))
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build();
        io.streamsaga.idempotency.IdempotentConsumer consumer = io.streamsaga.idempotency.IdempotentConsumer
                .builder(bus, io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore.builder().build()).build();
        AtomicInteger runs = new AtomicInteger();
        onOrder(bus, consumer.wrap((event, ctx) -> {
            runs.incrementAndGet();
            requestPayment(bus, event);
        }));

        orderAndDrain(bus, real);

        assertEquals(2, runs.get(), "the key must not be marked done before the handler's publish went through");
        assertEquals(1, real.messages("payment-requested").size());
        assertTrue(real.messages("order-created.DLT").isEmpty());
    }

    @Test
    void aFailedPublishOfAFailureHookIsNotTheHandlersAndDoesNotFailItsRetryThatSucceeds() {
        InMemoryTransport real = manualTransport();
        InMemoryTransport transport = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (message.topic().equals("alerts")) {
                return CompletableFuture.failedFuture(new PublishException(message.topic(), "alerts refused", null, false));
            }
            return real.send(message);
        }).when(transport).send(any(Message.class));
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        // a hook publishing an alert on the handler's thread, best effort: MessageInterceptor says it changes nothing
        io.streamsaga.bus.MessageInterceptor alerting = new io.streamsaga.bus.MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                busRef.get().publish("alerts", message.key(), new PaymentRequested(message.key()));
            }
        };
        EventBus bus = bus(transport).interceptor(alerting)
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).build();
        busRef.set(bus);
        AtomicInteger attempts = new AtomicInteger();
        onOrder(bus, (event, ctx) -> {
            if (attempts.incrementAndGet() == 1) {
                throw new IllegalStateException("first attempt fails");
            }
            requestPayment(bus, event);
        });

        orderAndDrain(bus, real);

        assertEquals(2, attempts.get());
        assertEquals(1, real.messages("payment-requested").size());
        assertTrue(real.messages("order-created.DLT").isEmpty(),
                "the second attempt succeeded: the hook's failed alert is not a publish of the handler's");
    }

    @Test
    void aHandlerWhosePublishFailedAndThatThrowsIsReportedOnceWithItsOwnFailure() {
        InMemoryTransport transport = manualTransport();
        List<Throwable> reported = new java.util.concurrent.CopyOnWriteArrayList<>();
        io.streamsaga.bus.MessageInterceptor failures = new io.streamsaga.bus.MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                reported.add(error);
            }
        };
        EventBus bus = bus(transport).interceptor(failures).retryPolicy(RetryPolicy.NONE).build();
        onOrder(bus, (event, ctx) -> {
            bus.publish("payment-requested", event.orderId(), new NotRegistered(event.orderId()));
            throw new IllegalStateException("the handler's own failure");
        });

        orderAndDrain(bus, transport);

        assertEquals(1, reported.size(), "one attempt, one failure: " + reported);
        assertEquals("the handler's own failure", reported.get(0).getMessage());
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size());
        assertEquals(IllegalStateException.class.getName(), dead.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
    }

    @Test
    void workRunOutsideAHandlerAwaitingItsPublishesFailsWithTheFailedPublishItDidNotWaitFor() {
        EventBus bus = bus(manualTransport()).build();

        PublishException failure = org.junit.jupiter.api.Assertions.assertThrows(PublishException.class,
                () -> bus.awaitingPublishes(() -> bus.publish("payment-requested", "o-1", new NotRegistered("o-1"))));

        assertTrue(failure.getMessage().contains("payment-requested")
                && failure.getMessage().contains("a publish outside a handler failed"), failure.getMessage());
        assertEquals("done", org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> bus.awaitingPublishes(() -> {
            bus.publish("payment-requested", "o-1", new PaymentRequested("o-1"));
            return "done";
        })), "work whose publishes went through returns what it returned");
        bus.publish("payment-requested", "o-1", new NotRegistered("o-1")); // outside any such work: its caller's to see
        assertEquals("after", org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> bus.awaitingPublishes(() -> "after")),
                "a failed publish made before the work is not the work's");
    }
}
