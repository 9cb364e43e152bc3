package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * The arrangement of the tests of what a handler publishes ({@code HandlerPublishFailureTest},
 * {@code DeliveryFinishedLaterTest}): group {@value #GROUP} handles order-created by publishing payment-requested, on a
 * bus over a MANUAL in-memory transport whose sends to payment-requested the test may answer itself. Stateless.
 */
final class OrderPayments {
    static final String GROUP = "orders";
    static final String ORDER_CREATED = "order-created";
    static final String PAYMENT_REQUESTED = "payment-requested";

    record OrderCreated(String orderId) {
    }

    record PaymentRequested(String orderId) {
    }

    /** A class the bus's registry leaves out: its publish fails at once, before the transport. */
    record NotRegistered(String orderId) {
    }

    private OrderPayments() {
    }

    /** An in-memory transport the test drains by hand. */
    static InMemoryTransport manualTransport() {
        return InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    }

    /** A bus over {@code transport} on a virtual scheduler, order-created and payment-requested registered. */
    static EventBus.Builder bus(InMemoryTransport transport) {
        return EventBus.builder(transport).scheduler(new VirtualScheduler()).types(TypeRegistry.builder()
                .register(ORDER_CREATED, 1, OrderCreated.class).register(PAYMENT_REQUESTED, 1, PaymentRequested.class)
                .build());
    }

    /**
     * A mock over {@code real} whose sends to payment-requested return what {@code answer} gives for the message (each
     * other send goes to {@code real}).
     */
    static InMemoryTransport answeringPayments(InMemoryTransport real,
                                               Function<Message, CompletionStage<RecordPosition>> answer) {
        InMemoryTransport transport = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            return message.topic().equals(PAYMENT_REQUESTED) ? answer.apply(message) : real.send(message);
        }).when(transport).send(any(Message.class));
        return transport;
    }

    /** {@code real}, its first send to payment-requested failed retriably ("broker unavailable"), the others sent. */
    static InMemoryTransport refusingThePaymentOnce(InMemoryTransport real) {
        AtomicInteger refusals = new AtomicInteger(1);
        return answeringPayments(real, message -> refusals.getAndDecrement() > 0
                ? CompletableFuture.failedFuture(new PublishException(message.topic(), "broker unavailable", null, true))
                : real.send(message));
    }

    /** Subscribes group {@value #GROUP} to order-created with {@code handler}. */
    static void onOrder(EventBus bus, EventHandler<OrderCreated> handler) {
        bus.subscribe(GROUP, ORDER_CREATED, OrderCreated.class, handler);
    }

    /** Publishes the payment the order asks for, without waiting for it. */
    static void requestPayment(EventBus bus, OrderCreated order) {
        bus.publish(PAYMENT_REQUESTED, order.orderId(), new PaymentRequested(order.orderId()));
    }

    /** Publishes order o-1 and drains {@code real}: every delivery made, on this thread. */
    static void orderAndDrain(EventBus bus, InMemoryTransport real) {
        bus.publish(ORDER_CREATED, "o-1", new OrderCreated("o-1"));
        real.drainAll();
    }

    /** An interceptor adding the topic of each message acknowledged to {@code acknowledged}. */
    static MessageInterceptor acknowledgedInto(List<String> acknowledged) {
        return new MessageInterceptor() {
            @Override
            public void onAcknowledged(Message message, String group) {
                acknowledged.add(message.topic());
            }
        };
    }

    /** A started thread, the broker, that runs {@code answer} (completes a send in flight) once {@code when} is counted down. */
    static Thread brokerAnswering(CountDownLatch when, Runnable answer) {
        Thread broker = new Thread(() -> {
            try {
                when.await();
                answer.run();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        broker.start();
        return broker;
    }
}
