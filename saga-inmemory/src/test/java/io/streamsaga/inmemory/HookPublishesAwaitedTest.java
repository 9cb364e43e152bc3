package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * {@link EventBus#awaitingPublishes} and {@link EventBus#awaitPublishes} in an interceptor's hook or a dead-letter
 * listener, which run on the consumer thread with the delivered message current but no handler running: they wait for
 * what that hook or listener published in the work, and report its failure, as on a timer's thread.
 */
class HookPublishesAwaitedTest {
    record OrderCreated(String orderId) {
    }

    record Alert(String orderId) {
    }

    /** A class the bus's registry leaves out. */
    record NotRegistered(String orderId) {
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                .register("alert", 1, Alert.class).build();
    }

    @Test
    void aFailureHookAwaitingItsPublishesGetsItsFailedPublishAndTheRecordIsDeadLetteredAsBefore() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        List<Object> outcomes = new CopyOnWriteArrayList<>();
        MessageInterceptor alerting = new MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                EventBus bus = busRef.get();
                awaiting(bus, () -> bus.publish("alerts", message.key(), new NotRegistered(message.key())), outcomes);
            }
        };
        busRef.set(EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types()).interceptor(alerting)
                .retryPolicy(RetryPolicy.NONE).build());

        handleAFailingOrder(transport, busRef.get(), SubscriptionOptions.defaults());

        assertEquals(1, outcomes.size(), outcomes.toString());
        PublishException failure = assertInstanceOf(outcomes.get(0));
        assertTrue(failure.getMessage().contains("alerts") && failure.getMessage().contains(NotRegistered.class.getName())
                && failure.getMessage().contains("a publish outside a handler failed"), failure.getMessage());
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size(), "the hook's failure changes nothing about the record");
        assertEquals(IllegalStateException.class.getName(), dead.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
    }

    @Test
    void awaitPublishesInTheWorkOfADeadLetteredHookThrowsItsFailedPublishOnce() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        List<Object> outcomes = new CopyOnWriteArrayList<>();
        MessageInterceptor alerting = new MessageInterceptor() {
            @Override
            public void onDeadLettered(Message message, String group) {
                EventBus bus = busRef.get();
                awaiting(bus, () -> {
                    bus.publish("alerts", message.key(), new NotRegistered(message.key()));
                    try {
                        bus.awaitPublishes();
                        outcomes.add("awaitPublishes returned");
                    } catch (PublishException e) {
                        outcomes.add(e);
                    }
                    return "returned";
                }, outcomes);
            }
        };
        busRef.set(EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types()).interceptor(alerting)
                .retryPolicy(RetryPolicy.NONE).build());

        handleAFailingOrder(transport, busRef.get(), SubscriptionOptions.defaults());

        assertEquals(2, outcomes.size(), outcomes.toString());
        PublishException failure = assertInstanceOf(outcomes.get(0));
        assertTrue(failure.getMessage().contains("alerts"), failure.getMessage());
        assertEquals("returned", outcomes.get(1), "the failure awaitPublishes threw is not thrown again at the work's end");
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void aDeadLetterListenerAwaitingItsPublishesWaitsForTheTransportsLaterRefusal() {
        InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        InMemoryTransport transport = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (message.topic().equals("alerts")) { // in flight when publish returns, refused later on another thread
                CompletableFuture<RecordPosition> later = new CompletableFuture<>();
                new Thread(() -> later.completeExceptionally(
                        new PublishException(message.topic(), "alerts refused", null, false))).start();
                return later;
            }
            return real.send(message);
        }).when(transport).send(any(Message.class));
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        List<Object> outcomes = new CopyOnWriteArrayList<>();
        SubscriptionOptions options = SubscriptionOptions.defaults().withDeadLetterListener((ctx, reason) -> {
                    EventBus bus = busRef.get();
                    for (String topic : List.of("alert", "alerts")) {
                        awaiting(bus, () -> {
                            bus.publish(topic, ctx.message().key(), new Alert(ctx.message().key()));
                            return "sent to " + topic;
                        }, outcomes);
                    }
                });
        busRef.set(EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types()).build());

        handleAFailingOrder(real, busRef.get(), options);

        assertEquals(2, outcomes.size(), outcomes.toString());
        assertEquals("sent to alert", outcomes.get(0), "work whose publishes went through returns what it returned");
        PublishException failure = assertInstanceOf(outcomes.get(1));
        assertTrue(failure.getMessage().contains("alerts refused"), failure.getMessage());
        assertFalse(failure.isRetriable());
        assertEquals(1, real.messages("alert").size());
        assertEquals(1, real.messages("order-created.DLT").size());
    }

    @Test
    void aNestedDeliverysFailureHookAwaitingPublishesLeavesTheOuterHandlersFailedPublishToItsDelivery() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        List<Object> outcomes = new CopyOnWriteArrayList<>();
        MessageInterceptor awaitingInTheHook = new MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                if (!group.equals("inner")) {
                    return;
                }
                EventBus bus = busRef.get();
                try { // a message current (the nested one), no handler running: not the outer handler's publishes
                    bus.awaitPublishes();
                    outcomes.add("awaitPublishes returned");
                } catch (Exception e) {
                    outcomes.add(e);
                }
                awaiting(bus, () -> "work returned", outcomes);
            }
        };
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types())
                .interceptor(awaitingInTheHook).retryPolicy(RetryPolicy.NONE).build();
        busRef.set(bus);
        bus.subscribe("inner", "nested-orders", OrderCreated.class, (event, ctx) -> {
            throw new IllegalStateException("the nested handler's own failure");
        });
        bus.subscribe("outer", "order-created", OrderCreated.class, (event, ctx) -> {
            bus.publish("alerts", event.orderId(), new NotRegistered(event.orderId())); // failed, the delivery's
            bus.publish("nested-orders", event.orderId(), event);
            transport.drainAll(); // a nested delivery on this thread, whose handler fails and whose hook runs
        });

        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of("awaitPublishes returned", "work returned"), outcomes);
        assertEquals(1, transport.messages("nested-orders.DLT").size());
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size(), "the outer handler's failed publish still fails its delivery");
        assertEquals(PublishException.class.getName(), dead.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
        assertTrue(dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains("alerts"));
    }

    @Test
    void aNestedDeliveryOfTheSameMessageToAnotherGroupLeavesTheOuterHandlersFailedPublishToItsDelivery() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types())
                .retryPolicy(RetryPolicy.NONE).build();
        AtomicReference<String> outerRunning = new AtomicReference<>();
        List<Object> outcomes = new CopyOnWriteArrayList<>();
        bus.subscribe("outer", "order-created", OrderCreated.class, (event, ctx) -> {
            bus.publish("alerts", event.orderId(), new NotRegistered(event.orderId())); // failed, the delivery's
            outerRunning.set(event.orderId());
            transport.drainAll(); // delivers the same record to the other group, nested on this thread
            outerRunning.set(null);
        });
        bus.subscribe("beside", "order-created", OrderCreated.class,
                (event, ctx) -> outcomes.add(event.orderId() + (outerRunning.get() != null ? " nested" : " alone")));

        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of("o-1 nested"), outcomes, "the other group has the record inside the outer handler");
        List<Message> dead = transport.messages("order-created.DLT");
        assertEquals(1, dead.size(), dead.toString());
        assertEquals("outer", dead.get(0).headers().get(MessageHeaders.DLT_ORIGINAL_GROUP),
                "the outer handler's failed publish fails its own delivery, not the nested one of the other group");
        assertTrue(dead.get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains("alerts"));
    }

    /** Runs {@code work} through {@code bus.awaitingPublishes}, adding what it returned or threw to {@code outcomes}. */
    private static void awaiting(EventBus bus, Callable<Object> work, List<Object> outcomes) {
        try {
            outcomes.add(bus.awaitingPublishes(work));
        } catch (Exception e) {
            outcomes.add(e);
        }
    }

    /** Publishes an order whose handler throws, not retried, and delivers it: its hooks and listener run then. */
    private static void handleAFailingOrder(InMemoryTransport transport, EventBus bus, SubscriptionOptions options) {
        bus.subscribe("orders", "order-created", OrderCreated.class, options.withRetryPolicy(RetryPolicy.NONE),
                (event, ctx) -> {
                    throw new IllegalStateException("the handler's own failure");
                });
        bus.publish("order-created", "o-1", new OrderCreated("o-1"));
        transport.drainAll();
    }

    private static PublishException assertInstanceOf(Object outcome) {
        return org.junit.jupiter.api.Assertions.assertInstanceOf(PublishException.class, outcome, String.valueOf(outcome));
    }
}
