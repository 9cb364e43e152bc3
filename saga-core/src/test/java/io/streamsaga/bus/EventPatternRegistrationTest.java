package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Declarative handlers: {@code @EventPattern} methods of a plain object, registered with one call. */
class EventPatternRegistrationTest {
    record OrderCreated(String orderId) {
    }

    /** Like the source's NestJS services. */
    static final class InventoryService {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("order-created")
        public void reserve(OrderCreated event) {
            log.add("reserve " + event.orderId());
        }

        @EventPattern(value = "payment-*", start = StartPosition.EARLIEST)
        public void audit(Message message, DeliveryContext context) {
            log.add("audit " + message.topic() + " attempt " + context.attempt());
        }

        @EventPattern("order-cancelled")
        public CompletionStage<Void> notifyAsync(OrderCreated event) {
            return CompletableFuture.runAsync(() -> log.add("notified " + event.orderId()));
        }

        public void notAHandler(OrderCreated event) {
            log.add("never");
        }
    }

    static final class FailingAsync {
        int calls;

        @EventPattern("order-created")
        public CompletionStage<Void> charge(OrderCreated event) {
            calls++;
            return CompletableFuture.failedFuture(new IllegalStateException("gateway down"));
        }
    }

    static final class NoHandlers {
        public void handle(OrderCreated event) {
        }
    }

    static final class BadSignature {
        @EventPattern("order-created")
        public void handle(OrderCreated event, String extra) {
        }
    }

    /** One good handler and one whose topic pattern is illegal: whichever reflection lists first. */
    static final class HalfGood {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("order-created")
        public void reserve(OrderCreated event) {
            log.add("reserve " + event.orderId());
        }

        @EventPattern("orders/created")
        public void misnamed(OrderCreated event) {
            log.add("never");
        }
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build();

    /** A scheduler whose sleeps return at once: backoff is not what these tests are about. */
    private static final Scheduler NO_WAIT = new Scheduler() {
        @Override
        public Clock clock() {
            return Clock.systemUTC();
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            throw new UnsupportedOperationException("not used by the bus");
        }

        @Override
        public void sleep(Duration delay) {
        }

        @Override
        public void close() {
        }
    };

    private static Message order(String id) {
        return Message.builder("order-created").key(id).type("order-created").payload(new OrderCreated(id)).build();
    }

    @Test
    void everyAnnotatedMethodBecomesASubscriptionOfTheGroup() throws Exception {
        RecordingTransport transport = new RecordingTransport();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(NO_WAIT).build();
        InventoryService service = new InventoryService();

        List<Subscription> subscriptions = bus.register("inventory", service);

        assertEquals(3, subscriptions.size());
        assertTrue(subscriptions.stream().allMatch(s -> s.group().equals("inventory")));
        assertTrue(transport.registrations.stream().anyMatch(r -> r.pattern().equals(TopicPattern.of("payment-*"))
                && r.start() == StartPosition.EARLIEST));
        // each on a topic of its own: methods of one group whose topics overlap are refused
        // (EventPatternMethodsOfOneGroupTest in saga-inmemory), as they would share the messages
        assertEquals(1, transport.deliver(order("o-1")));
        assertEquals(1, transport.deliver(order("o-1").withTopic("payment-failed")));
        assertEquals(1, transport.deliver(order("o-1").withTopic("order-cancelled")));
        assertEquals(List.of("audit payment-failed attempt 1", "notified o-1", "reserve o-1"),
                service.log.stream().sorted().toList());
    }

    @Test
    void aFailedCompletionStageIsRetriedThenDeadLettered() throws Exception {
        RecordingTransport transport = new RecordingTransport();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(NO_WAIT)
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).build()).build();
        FailingAsync payment = new FailingAsync();
        bus.register("payment", payment);

        transport.deliver(order("o-2"));

        assertEquals(2, payment.calls);
        Message dead = transport.sent.get(0);
        assertEquals("order-created.DLT", dead.topic());
        assertEquals(IllegalStateException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("gateway down", dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
    }

    @Test
    void closingTheSubscriptionsUnregistersTheHandlers() throws Exception {
        RecordingTransport transport = new RecordingTransport();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(NO_WAIT).build();
        InventoryService service = new InventoryService();
        bus.register("inventory", service).forEach(Subscription::close);
        assertEquals(0, transport.deliver(order("o-3")));
        assertTrue(service.log.isEmpty());
    }

    @Test
    void anObjectWithoutHandlersIsRejected() {
        EventBus bus = EventBus.builder(new RecordingTransport()).types(TYPES).build();
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.register("g", new NoHandlers()));
        assertTrue(e.getMessage().endsWith("has no public method annotated with @EventPattern"), e.getMessage());
    }

    @Test
    void aMethodWithAWrongSignatureIsRejected() {
        EventBus bus = EventBus.builder(new RecordingTransport()).types(TYPES).build();
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.register("g", new BadSignature()));
        assertTrue(e.getMessage().contains("must be an instance method taking (event) or (event, DeliveryContext)"),
                e.getMessage());
    }

    @Test
    void aRegistrationRefusedForOneMethodSubscribesNoneOfTheOthers() throws Exception {
        // The good methods listed before the bad one stayed subscribed, with no handle returned to close them.
        RecordingTransport transport = new RecordingTransport();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(NO_WAIT).build();
        HalfGood service = new HalfGood();

        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.register("inventory", service));

        assertTrue(e.getMessage().contains("orders/created"), e.getMessage());
        assertEquals(0, transport.deliver(order("o-4")), "no subscription left behind");
        assertTrue(service.log.isEmpty());
    }
}
