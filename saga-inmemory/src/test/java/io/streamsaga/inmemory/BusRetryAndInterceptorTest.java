package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Backoff through the bus's scheduler, interceptors, and threads released on close. */
class BusRetryAndInterceptorTest {
    record OrderCreated(String orderId) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build();

    @Test
    void retriesWaitTheBackoffOnTheBussSchedulerBeforeDeadLettering() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler time = new VirtualScheduler();
        Instant start = time.now();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(time)
                .retryPolicy(RetryPolicy.builder().maxAttempts(4).initialBackoff(Duration.ofSeconds(1))
                        .multiplier(2).jitter(0).build())
                .build();
        List<Instant> attempts = new CopyOnWriteArrayList<>();
        bus.subscribe("payment", "order-created", OrderCreated.class, (event, ctx) -> {
            attempts.add(time.now());
            throw new IllegalStateException("down");
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of(start, start.plusSeconds(1), start.plusSeconds(3), start.plusSeconds(7)), attempts);
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void interceptorsSeeEveryStepOfAMessage() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        List<String> seen = new CopyOnWriteArrayList<>();
        MessageInterceptor tenant = new MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, EventCodec codec) {
                seen.add("publish " + message.topic());
                return message.withHeader("tenant", "vn");
            }

            @Override
            public Message afterReceive(Message message, String group) {
                seen.add("receive " + group + " tenant=" + message.header("tenant").orElse("?"));
                return message;
            }

            @Override
            public void onAcknowledged(Message message, String group) {
                seen.add("ack " + group);
            }

            @Override
            public void onDeadLettered(Message message, String group) {
                seen.add("dead " + group);
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).interceptor(tenant).build();
        bus.subscribe("ok", "order-created", OrderCreated.class, (event, ctx) -> { });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();
        assertEquals(List.of("publish order-created", "receive ok tenant=vn", "ack ok"), seen);

        seen.clear();
        bus.subscribe("failing", "order-created", OrderCreated.class, (event, ctx) -> {
            throw new IllegalStateException("no");
        });
        bus.publish("order-created", "k", new OrderCreated("o-2"));
        transport.drainAll();
        // Groups are delivered in no fixed order; each step happens exactly once.
        assertEquals(Set.of("publish order-created", "receive ok tenant=vn", "ack ok",
                "receive failing tenant=vn", "dead failing"), Set.copyOf(seen));
        assertEquals(5, seen.size());
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void aSubscriptionsDeadLetterListenerHearsOfItsOwnDeadLettersOnlyAfterTheyWereSent() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).build();
        List<String> heard = new CopyOnWriteArrayList<>();
        SubscriptionOptions options = SubscriptionOptions.defaults().withDeadLetterListener((ctx, reason) ->
                heard.add(ctx.group() + " " + ctx.partition() + "/" + ctx.offset() + " attempts=" + ctx.attempt() + " "
                        + reason + " dlt=" + transport.messages("order-created.DLT").size()));
        bus.subscribe("failing", "order-created", OrderCreated.class, options, (event, ctx) -> {
            if (event.orderId().equals("o-2")) {
                throw new IllegalStateException("poison");
            }
        });
        bus.subscribe("other", "order-created", OrderCreated.class, (event, ctx) -> {
            throw new IllegalStateException("down");
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        bus.publish("order-created", "k", new OrderCreated("o-2"));
        bus.publish(Message.builder("order-created").key("k").type("order-created").version(1)
                .payload("{not json".getBytes(java.nio.charset.StandardCharsets.UTF_8)).build());
        transport.drainAll();

        // "other" dead-letters all three records too, but only "failing" listens, and each call comes after its letter.
        assertEquals(List.of("failing 0/1 attempts=1 handler-failed", "failing 0/2 attempts=0 undecodable"),
                heard.stream().map(h -> h.substring(0, h.indexOf(" dlt="))).toList());
        for (String h : heard) {
            assertTrue(Integer.parseInt(h.substring(h.indexOf("dlt=") + 4)) >= 1, h);
        }
    }

    @Test
    void aDeadLetterListenerThatThrowsDoesNotMakeTheBusHandleTheRecordAgain() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("failing", "order-created", OrderCreated.class,
                SubscriptionOptions.defaults().withDeadLetterListener((ctx, reason) -> {
                    throw new IllegalStateException("listener broken");
                }),
                (event, ctx) -> {
                    handled.add(event.orderId());
                    throw new IllegalStateException("poison");
                });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of("o-1"), handled);
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void aFailingAcknowledgementHookDoesNotMakeTheBusHandleTheMessageAgain() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor brokenHook = new MessageInterceptor() {
            @Override
            public void onAcknowledged(Message message, String group) {
                throw new IllegalStateException("payload store down");
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).interceptor(brokenHook).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("once", "order-created", OrderCreated.class, (event, ctx) -> handled.add(event.orderId()));
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();
        assertEquals(List.of("o-1"), handled);
        assertTrue(transport.messages("order-created.DLT").isEmpty());
    }

    @Test
    void aReceiveInterceptorThatThrowsAPlainRuntimeExceptionDeadLettersTheMessageAsRejected() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor broken = new MessageInterceptor() {
            @Override
            public Message afterReceive(Message message, String group) {
                throw new IllegalStateException("interceptor bug");
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).interceptor(broken).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("g", "order-created", OrderCreated.class, (event, ctx) -> handled.add(event.orderId()));
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of(), handled);
        assertEquals(0, transport.pendingCount(), "not redelivered forever");
        List<Message> letters = transport.messages("order-created.DLT");
        assertEquals(1, letters.size());
        assertEquals("rejected-on-receive", letters.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals(IllegalStateException.class.getName(), letters.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
    }

    @Test
    void aReceiveInterceptorThatReturnsNullDeadLettersTheMessageInsteadOfDroppingIt() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor nulling = new MessageInterceptor() {
            @Override
            public Message afterReceive(Message message, String group) {
                return null;
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).interceptor(nulling).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("g", "order-created", OrderCreated.class, (event, ctx) -> handled.add(event.orderId()));
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of(), handled);
        List<Message> letters = transport.messages("order-created.DLT");
        assertEquals(1, letters.size(), "not acknowledged silently");
        assertEquals("rejected-on-receive", letters.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals(ConfigurationException.class.getName(), letters.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
    }

    @Test
    void theRefusalOfAReceiveInterceptorsNullQuotesTheMessageIdBounded() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor nulling = new MessageInterceptor() {
            @Override
            public Message afterReceive(Message message, String group) {
                return null;
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).interceptor(nulling).build();
        bus.subscribe("g", "order-created", OrderCreated.class, (event, ctx) -> { });
        bus.publish(Message.builder("order-created").id("m-" + "x".repeat(10_000)).type("order-created")
                .payload(new OrderCreated("o-1")).build());
        transport.drainAll();

        String error = transport.messages("order-created.DLT").get(0).headers().get(MessageHeaders.DLT_ERROR_MESSAGE);
        assertTrue(error.length() < 400 && error.contains("'m-xxx") && error.contains("(10002 characters)"), error);
    }

    @Test
    void aHandlerThatThrowsAnErrorIsRetriedAndDeadLetteredLikeOneThatThrowsAnException() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("g", "order-created", OrderCreated.class, (event, ctx) -> {
            handled.add(event.orderId());
            throw new StackOverflowError("recursion");
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();

        assertEquals(List.of("o-1", "o-1"), handled);
        assertEquals(0, transport.pendingCount(), "not redelivered forever");
        List<Message> letters = transport.messages("order-created.DLT");
        assertEquals(1, letters.size());
        assertEquals("handler-failed", letters.get(0).headers().get(MessageHeaders.DLT_REASON));
        assertEquals(StackOverflowError.class.getName(), letters.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
        assertEquals("2", letters.get(0).headers().get(MessageHeaders.DLT_ATTEMPTS));
    }

    @Test
    void anInterceptorHearsOfEachFailedAttemptWithItsErrorAndTheBusGoesOnAsBefore() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        List<String> heard = new CopyOnWriteArrayList<>();
        MessageInterceptor observer = new MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                heard.add(group + " " + error.getClass().getSimpleName() + " " + message.id());
                throw new IllegalStateException("a broken hook changes nothing");
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).interceptor(observer).build();
        bus.subscribe("asserting", "order-created", OrderCreated.class, (event, ctx) -> {
            throw new AssertionError("unexpected " + event.orderId());
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();
        String id = transport.messages("order-created").get(0).id();
        // an AssertionError: each attempt heard of, then dead-lettered as ever
        assertEquals(List.of("asserting AssertionError " + id, "asserting AssertionError " + id), heard);
        assertEquals(1, transport.messages("order-created.DLT").size());
        assertEquals(0, transport.pendingCount());

        heard.clear();
        class ProcessDied extends Error {
        }
        bus.subscribe("dying", "order-created", OrderCreated.class, SubscriptionOptions.defaults()
                .withStart(io.streamsaga.bus.StartPosition.EARLIEST), (event, ctx) -> {
            throw new ProcessDied();
        });
        transport.drainAll();
        // any other Error: heard of, then through to the transport, which keeps the record to deliver again
        assertEquals(List.of("dying ProcessDied " + id), heard);
        assertEquals(1, transport.pendingCount());
    }

    @Test
    void aFailingDeadLetterHookDoesNotMakeTheBusHandleTheMessageAgain() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor brokenHook = new MessageInterceptor() {
            @Override
            public void onDeadLettered(Message message, String group) {
                throw new IllegalStateException("payload store down");
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).interceptor(brokenHook).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("failing", "order-created", OrderCreated.class, (event, ctx) -> {
            handled.add(event.orderId());
            throw new IllegalStateException("poison");
        });
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();
        transport.drainAll();

        assertEquals(List.of("o-1"), handled);
        assertEquals(0, transport.pendingCount());
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void hooksThatThrowAnAssertionErrorOrAStackOverflowErrorChangeNothingAsHooksThatThrowAnExceptionDo() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        MessageInterceptor asserting = new MessageInterceptor() {
            @Override
            public void onHandlerFailed(Message message, String group, Throwable error) {
                throw new AssertionError("a hook's own bug");
            }

            @Override
            public void onAcknowledged(Message message, String group) {
                throw new StackOverflowError();
            }

            @Override
            public void onDeadLettered(Message message, String group) {
                throw new AssertionError("a hook's own bug");
            }
        };
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).interceptor(asserting).build();
        List<String> failing = new CopyOnWriteArrayList<>();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("failing", "order-created", OrderCreated.class,
                SubscriptionOptions.defaults().withDeadLetterListener((ctx, reason) -> {
                    throw new AssertionError("listener's own bug");
                }),
                (event, ctx) -> {
                    failing.add(event.orderId());
                    throw new IllegalStateException("poison");
                });
        bus.subscribe("once", "order-created", OrderCreated.class, (event, ctx) -> handled.add(event.orderId()));
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        transport.drainAll();
        transport.drainAll();

        // the failing group: both attempts made, then dead-lettered once, as with hooks that throw exceptions
        assertEquals(List.of("o-1", "o-1"), failing);
        assertEquals(1, transport.messages("order-created.DLT").size());
        // the succeeding group: handled once, its broken acknowledgement hook notwithstanding
        assertEquals(List.of("o-1"), handled);
        assertEquals(0, transport.pendingCount());
    }

    @Test
    void closingASubscriptionEndsItsConsumerThread() {
        try (InMemoryTransport transport = InMemoryTransport.create();
             EventBus bus = EventBus.builder(transport).types(TYPES).build()) {
            Subscription subscription = bus.subscribe("thread-check", "order-created", OrderCreated.class, (e, c) -> { });
            await().atMost(Duration.ofSeconds(10)).until(() -> consumerThreadAlive("thread-check"));
            subscription.close();
            assertFalse(subscription.isActive());
            assertFalse(consumerThreadAlive("thread-check"), "close() joins the consumer thread");
        }
    }

    @Test
    void aDeadLetterTopicWhoseOwnDeadLetterTopicKafkaRefusesCannotBeSubscribedTo() {
        // a 245-character topic's dead-letter topic (249) is a legal name: a handler subscribed to it that failed had
        // its record dead-lettered to the name and .DLT (253), which the transport refused, so the record was
        // delivered again and again, what the 245-character limit exists to prevent
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).retryPolicy(RetryPolicy.builder().maxAttempts(1).build()).build();
        String deadLetters = "t".repeat(245) + MessageHeaders.DEAD_LETTER_SUFFIX;
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.subscribe("ops", deadLetters,
                OrderCreated.class, (event, ctx) -> {
                    throw new IllegalStateException("down");
                }));
        assertEquals("group 'ops' cannot subscribe to a topic over 245 characters, whose dead-letter topic (the name and"
                + " .DLT) would be over the 249 Kafka takes, but was '" + "t".repeat(64) + "...' (249 characters)", e.getMessage());
        // the longest topic's dead letters are still published, and a 245-character dead-letter topic is subscribed to
        String shorter = "t".repeat(241) + MessageHeaders.DEAD_LETTER_SUFFIX;
        List<String> failed = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", shorter, OrderCreated.class, (event, ctx) -> {
            failed.add(event.orderId());
            throw new IllegalStateException("down");
        });
        bus.publish(shorter, "k", new OrderCreated("o-1")).toCompletableFuture().join();
        assertEquals(deadLetters, bus.publish(deadLetters, "k", new OrderCreated("o-2")).toCompletableFuture().join().topic());
        transport.drainAll();
        assertEquals(List.of("o-1"), failed);
        assertEquals(1, transport.messages(shorter + MessageHeaders.DEAD_LETTER_SUFFIX).size());
    }

    private static boolean consumerThreadAlive(String group) {
        return Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.isAlive() && t.getName().startsWith("streamsaga-inmemory-" + group + "-"));
    }
}
