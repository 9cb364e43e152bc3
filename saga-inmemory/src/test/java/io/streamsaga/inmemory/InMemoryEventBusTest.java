package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InMemoryEventBusTest {
    record OrderCreated(String orderId, long amount) {
    }

    record PaymentProcessed(String orderId) {
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("order-created", 1, OrderCreated.class)
                .register("payment-processed", 1, PaymentProcessed.class)
                .build();
    }

    @Test
    void publishingFromAHandlerPropagatesCorrelationAndSetsCausation() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(types()).scheduler(new VirtualScheduler()).build()) {
            List<Message> payments = new CopyOnWriteArrayList<>();
            bus.subscribe("payment", "order-created", OrderCreated.class,
                    (event, ctx) -> bus.publish("payment-processed", event.orderId(), new PaymentProcessed(event.orderId())));
            bus.subscribe("audit", "payment-processed", Message.class, (message, ctx) -> payments.add(message));

            Message order = Message.builder("order-created").key("o-1").type("order-created")
                    .payload(new OrderCreated("o-1", 100)).header(MessageHeaders.CORRELATION_ID, "corr-1").build();
            bus.publish(order);
            transport.drainAll();

            assertEquals(1, payments.size());
            Message payment = payments.get(0);
            assertEquals("corr-1", payment.correlationId().orElseThrow());
            assertEquals(order.id(), payment.causationId().orElseThrow());
        }
    }

    @Test
    void failingHandlerIsRetriedThenDeadLetteredAndTheConsumerGoesOn() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler scheduler = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport).types(types()).scheduler(scheduler).build()) {
            List<String> handled = new CopyOnWriteArrayList<>();
            bus.subscribe("payment", "order-created", OrderCreated.class,
                    SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(3).build()),
                    (event, ctx) -> {
                        if (event.orderId().equals("bad")) {
                            throw new IllegalStateException("card declined");
                        }
                        handled.add(event.orderId());
                    });
            List<Message> deadLetters = new CopyOnWriteArrayList<>();
            bus.subscribe("ops", "order-created.DLT", Message.class, (m, ctx) -> deadLetters.add(m));
            bus.publish("order-created", "k", new OrderCreated("bad", 1));
            bus.publish("order-created", "k", new OrderCreated("good", 2));
            transport.drainAll();

            assertEquals(List.of("good"), handled);
            assertEquals(1, deadLetters.size());
            Message dead = deadLetters.get(0);
            assertEquals(IllegalStateException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
            assertEquals("card declined", dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
            assertEquals("3", dead.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());
            assertEquals("order-created", dead.header(MessageHeaders.DLT_ORIGINAL_TOPIC).orElseThrow());
        }
    }

    @Test
    void asyncDeliveryReachesEveryIndependentGroup() throws InterruptedException {
        try (InMemoryTransport transport = InMemoryTransport.create();
             EventBus bus = EventBus.builder(transport).types(types()).build()) {
            CountDownLatch latch = new CountDownLatch(2 * 100);
            bus.subscribe("a", "order-*", OrderCreated.class, (e, ctx) -> latch.countDown());
            bus.subscribe("b", "order-created", OrderCreated.class, (e, ctx) -> latch.countDown());
            for (int i = 0; i < 100; i++) {
                bus.publish("order-created", "k" + i, new OrderCreated("o" + i, i));
            }
            assertTrue(latch.await(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void publishReportsThePositionAndStampsTheSchedulersTime() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler scheduler = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport).types(types()).scheduler(scheduler).build()) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", 1));
            var position = bus.publish("order-created", "o-2", new OrderCreated("o-2", 2)).toCompletableFuture().join();

            assertEquals(new io.streamsaga.bus.RecordPosition("order-created", 0, 1L), position);
            assertEquals(scheduler.clock().instant(), transport.messages("order-created").get(1).timestamp());
        }
    }

    @Test
    void publishOnTheSystemClockStampsTheCurrentMillisecond() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(types()).build()) {
            java.time.Instant before = java.time.Instant.ofEpochMilli(System.currentTimeMillis());
            bus.publish("order-created", "o-1", new OrderCreated("o-1", 1));
            bus.publish("order-created", "o-2", new OrderCreated("o-2", 2));
            java.time.Instant after = java.time.Instant.ofEpochMilli(System.currentTimeMillis());

            List<Message> messages = transport.messages("order-created");
            assertEquals(2, messages.size());
            for (Message message : messages) {
                assertEquals(0, message.timestamp().getNano() % 1_000_000, "whole milliseconds: " + message.timestamp());
                assertTrue(!message.timestamp().isBefore(before) && !message.timestamp().isAfter(after),
                        message.timestamp() + " outside " + before + ".." + after);
            }
        }
    }
}
