package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The handler decorator of {@link RegistrationOptions#decorator()}: put around the handler of every
 * {@code @EventPattern} method of the object registered (what an {@code IdempotentConsumer}'s {@code wrap} is), once
 * every check passed, and refused when it returns null.
 */
class EventPatternDecoratorTest {
    record OrderPlaced(String orderId) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class).build();

    private final RecordingTransport transport = new RecordingTransport();
    private final EventBus bus = EventBus.builder(transport).types(TYPES)
            .retryPolicy(RetryPolicy.builder().maxAttempts(1).build()).build();

    static final class Service {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("orders")
        public void placed(OrderPlaced order) {
            log.add("placed " + order.orderId());
        }

        @EventPattern("payments")
        public void paid(Message payment, DeliveryContext context) {
            log.add("paid " + payment.key());
        }

        @EventPattern("refunds")
        public CompletionStage<Void> refunded(OrderPlaced order) {
            log.add("refunding " + order.orderId());
            return CompletableFuture.failedFuture(new IllegalStateException("refund gateway down"));
        }
    }

    /** Two methods on one topic: refused whatever the decorator. */
    static final class Overlapping {
        @EventPattern("orders")
        public void one(Message order) {
        }

        @EventPattern("order*")
        public void other(Message order) {
        }
    }

    private static Message on(String topic, String id) {
        return Message.builder(topic).key(id).type("order-placed").payload(new OrderPlaced(id)).build();
    }

    @Test
    void theDecoratorWrapsTheHandlerOfEveryMethodAndSeesWhatTheMethodsStageFailedWith() throws Exception {
        Service service = new Service();
        List<String> seen = new CopyOnWriteArrayList<>();
        AtomicInteger decorated = new AtomicInteger();
        UnaryOperator<EventHandler<Object>> logging = handler -> {
            decorated.incrementAndGet();
            return (event, context) -> {
                seen.add("before " + context.topic());
                try {
                    handler.handle(event, context);
                    seen.add("after " + context.topic());
                } catch (Exception e) {
                    seen.add("failed " + context.topic() + ": " + e.getMessage());
                    throw e;
                }
            };
        };

        bus.register("shop", service, RegistrationOptions.builder().around(logging).build());
        transport.deliver(on("orders", "o-1"));
        transport.deliver(on("payments", "o-1"));
        transport.deliver(on("refunds", "o-1"));

        assertEquals(3, decorated.get(), "once per method");
        assertEquals(List.of("before orders", "after orders", "before payments", "after payments", "before refunds",
                "failed refunds: refund gateway down"), seen);
        assertEquals(List.of("placed o-1", "paid o-1", "refunding o-1"), service.log);
        Message dead = transport.sent.get(0);
        assertEquals("refunds.DLT", dead.topic(), "the decorator rethrew: the failure is dead-lettered as without it");
        assertEquals("refund gateway down", dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
    }

    /** A method whose stage completes after it returned, failing, as a remote call's reply does. */
    static final class Remote {
        final CompletableFuture<Void> reply = new CompletableFuture<>();
        final CountDownLatch returned = new CountDownLatch(1);

        @EventPattern("orders")
        public CompletionStage<Void> placed(OrderPlaced order) {
            returned.countDown();
            return reply;
        }
    }

    @Test
    void theHandlerTheDecoratorGetsReturnsOnlyOnceTheMethodsStageCompletedAndThrowsWhatItFailedWith() throws Exception {
        Remote remote = new Remote();
        List<String> seen = new CopyOnWriteArrayList<>();
        bus.register("shop", remote, RegistrationOptions.builder().around(handler -> (event, context) -> {
            try {
                handler.handle(event, context);
                seen.add("returned, stage done " + remote.reply.isDone());
            } catch (Exception e) {
                seen.add("failed, stage done " + remote.reply.isDone() + ": " + e.getMessage());
                throw e;
            }
        }).build());
        Thread delivering = Thread.currentThread();
        Thread replier = new Thread(() -> {
            try {
                remote.returned.await();
                // the delivering thread waits for the stage (the handler's get) before the reply comes
                await().atMost(Duration.ofSeconds(10)).until(() -> delivering.getState() == Thread.State.WAITING);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                remote.reply.completeExceptionally(new IllegalStateException("remote said no")); // never left waiting
            }
        });
        replier.start();

        transport.deliver(on("orders", "o-1"));
        replier.join();

        assertEquals(List.of("failed, stage done true: remote said no"), seen,
                "a decorator cannot see the handler return before the method's stage completed");
        assertEquals("orders.DLT", transport.sent.get(0).topic());
        assertEquals("remote said no", transport.sent.get(0).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow());
    }

    @Test
    void aDecoratorThatSkipsTheHandlerIsWhatTheBusCalls() throws Exception {
        Service service = new Service();

        bus.register("shop", service, RegistrationOptions.builder().around(handler -> (event, context) -> { }).build());
        transport.deliver(on("orders", "o-1"));
        transport.deliver(on("refunds", "o-1"));

        assertEquals(List.of(), service.log);
        assertEquals(List.of(), transport.sent, "nothing failed, nothing dead-lettered");
    }

    @Test
    void aDecoratorReturningNullIsRefusedNamingTheMethodAndNothingIsSubscribed() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("shop", new Service(), RegistrationOptions.builder().around(handler -> null).build()));

        assertTrue(e.getMessage().matches("the handler decorator of registration options returned null for @EventPattern"
                + " method Service\\.(placed|paid|refunded), whose messages would have no handler"), e.getMessage());
        assertEquals(List.of(), transport.registrations);
    }

    @Test
    void aRegistrationRefusedByACheckNeverCallsTheDecorator() {
        AtomicInteger decorated = new AtomicInteger();

        assertThrows(ConfigurationException.class, () -> bus.register("shop", new Overlapping(),
                RegistrationOptions.builder().around(handler -> {
                    decorated.incrementAndGet();
                    return handler;
                }).build()));

        assertEquals(0, decorated.get());
        assertEquals(List.of(), transport.registrations);
    }

    @Test
    void whatTheDecoratorThrowsPropagatesAndNothingIsSubscribed() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> bus.register("shop", new Service(),
                RegistrationOptions.builder().around(handler -> {
                    throw new IllegalStateException("no store");
                }).build()));

        assertEquals("no store", e.getMessage());
        assertEquals(List.of(), transport.registrations);
    }

    @Test
    void theDecoratorIsGivenOnceAndNotNull() {
        RegistrationOptions.Builder builder = RegistrationOptions.builder().around(UnaryOperator.identity());

        ConfigurationException twice = assertThrows(ConfigurationException.class, () -> builder.around(UnaryOperator.identity()));
        ConfigurationException none = assertThrows(ConfigurationException.class, () -> RegistrationOptions.builder().around(null));

        assertEquals("around(...) was given already: compose the decorators in one function, so that which wraps which"
                + " is written down", twice.getMessage());
        assertEquals("handler decorator must not be null", none.getMessage());
        assertEquals(RegistrationOptions.defaults(), RegistrationOptions.builder().build());
    }
}
