package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.ClaimInProgressException;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.idempotency.IdempotentProducer;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IdempotencyTest {
    record PaymentRequested(String orderId, long amount, Map<String, String> meta) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class).build())
            .scheduler(scheduler).build();
    private final InMemoryDeduplicationStore store = InMemoryDeduplicationStore.builder().build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private DeliveryContext delivery(Message message) {
        return new DeliveryContext(message, "payments", 0, 0, 1);
    }

    private Message payment(String orderId) {
        return Message.builder("payment-requested").id("m-" + orderId).type("payment-requested")
                .payload(new PaymentRequested(orderId, 10, Map.of())).build();
    }

    @Test
    void concurrentDuplicateDeliveriesRunTheHandlerOnce() throws Exception {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
        AtomicInteger runs = new AtomicInteger();
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        EventHandler<PaymentRequested> handler = consumer.wrap((event, ctx) -> {
            runs.incrementAndGet();
            inHandler.countDown();
            assertTrue(finish.await(10, TimeUnit.SECONDS));
        });
        Message message = payment("o-1");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> first = pool.submit(() -> {
                handler.handle((PaymentRequested) message.payload(), delivery(message));
                return null;
            });
            assertTrue(inHandler.await(10, TimeUnit.SECONDS));
            Future<?> second = pool.submit(() -> {
                handler.handle((PaymentRequested) message.payload(), delivery(message));
                return null;
            });
            Exception concurrent = assertThrows(Exception.class, () -> second.get(10, TimeUnit.SECONDS));
            assertInstanceOf(ClaimInProgressException.class, concurrent.getCause());
            assertTrue(((ClaimInProgressException) concurrent.getCause()).isRetriable());
            finish.countDown();
            first.get(10, TimeUnit.SECONDS);
            // the bus's retry of the concurrent delivery now sees the key done and skips it
            handler.handle((PaymentRequested) message.payload(), delivery(message));
        } finally {
            pool.shutdownNow();
        }
        assertEquals(1, runs.get());
    }

    @Test
    void redeliveredMessageIsSkippedOnTheBus() {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "payment-requested", PaymentRequested.class,
                consumer.wrap((event, ctx) -> handled.add(event.orderId())));
        Message message = payment("o-1");
        bus.publish(message);
        bus.publish(message); // at-least-once: the same message arrives twice
        transport.drainAll();
        assertEquals(List.of("o-1"), handled);
    }

    @Test
    void claimOfACrashedHandlerExpiresAfterTheLease() throws Exception {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).lease(Duration.ofSeconds(30)).build();
        Message message = payment("o-1");
        // a process took the claim and died before completing or releasing it
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("payments/" + message.id(), "dead-process",
                scheduler.now(), Duration.ofSeconds(30)));
        AtomicInteger runs = new AtomicInteger();
        EventHandler<PaymentRequested> handler = consumer.wrap((event, ctx) -> runs.incrementAndGet());

        assertThrows(ClaimInProgressException.class, () -> handler.handle((PaymentRequested) message.payload(), delivery(message)));
        scheduler.advance(Duration.ofSeconds(31));
        handler.handle((PaymentRequested) message.payload(), delivery(message));
        assertEquals(1, runs.get());
        assertTrue(store.isDone("payments/" + message.id(), scheduler.now()));
    }

    @Test
    void failedHandlerReleasesItsClaimSoTheRetryRuns() {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
        AtomicInteger attempts = new AtomicInteger();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "payment-requested", PaymentRequested.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()),
                consumer.wrap((event, ctx) -> {
                    if (attempts.incrementAndGet() == 1) {
                        throw new IllegalStateException("gateway timeout");
                    }
                    handled.add(event.orderId());
                }));
        bus.publish(payment("o-1"));
        transport.drainAll();
        assertEquals(2, attempts.get());
        assertEquals(List.of("o-1"), handled);
        assertTrue(transport.messages("payment-requested.DLT").isEmpty());
    }

    @Test
    void handlerThatSucceededIsNotRunAgainWhenMarkingItsKeyDoneFails() {
        CompleteFailsOnce flaky = new CompleteFailsOnce(store);
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, flaky).lease(Duration.ofSeconds(30)).build();
        List<String> charged = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "payment-requested", PaymentRequested.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(5)
                        .initialBackoff(Duration.ofSeconds(20)).multiplier(1).jitter(0).build()),
                consumer.wrap((event, ctx) -> charged.add(event.orderId())));
        bus.publish(payment("o-1"));
        transport.drainAll();
        assertEquals(List.of("o-1"), charged, "the handler succeeded once; the store's hiccup must not run it again");
        assertTrue(transport.messages("payment-requested.DLT").isEmpty());
    }

    /** A store whose first {@code complete} fails, as a database connection reset would. */
    private static class CompleteFailsOnce implements io.streamsaga.idempotency.spi.DeduplicationStore {
        private final io.streamsaga.idempotency.spi.DeduplicationStore store;
        private final AtomicInteger completions = new AtomicInteger();

        CompleteFailsOnce(io.streamsaga.idempotency.spi.DeduplicationStore store) {
            this.store = store;
        }

        @Override
        public ClaimOutcome tryClaim(String key, String owner, java.time.Instant now, Duration lease) {
            return store.tryClaim(key, owner, now, lease);
        }

        @Override
        public boolean complete(String key, String owner, java.time.Instant now) {
            if (completions.incrementAndGet() == 1) {
                throw new IllegalStateException("database connection reset");
            }
            return store.complete(key, owner, now);
        }

        @Override
        public void release(String key, String owner) {
            store.release(key, owner);
        }

        @Override
        public boolean isDone(String key, java.time.Instant now) {
            return store.isDone(key, now);
        }

        @Override
        public Duration window() {
            return store.window();
        }

        @Override
        public long maxEntries() {
            return store.maxEntries();
        }
    }

    @Test
    void handlerFailureIsWhatTheDeliveryFailsWithEvenWhenReleasingTheClaimFails() {
        io.streamsaga.idempotency.spi.DeduplicationStore releaseFails = new CompleteFailsOnce(store) {
            @Override
            public void release(String key, String owner) {
                throw new IllegalStateException("database connection reset");
            }
        };
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, releaseFails).build();
        IllegalArgumentException declined = new IllegalArgumentException("card declined");
        EventHandler<PaymentRequested> handler = consumer.wrap((event, ctx) -> {
            throw declined;
        });
        Message message = payment("o-1");
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> handler.handle((PaymentRequested) message.payload(), delivery(message)));
        assertEquals(declined, thrown, "the dead letter and the retry decision are about the handler's error");
        assertEquals("database connection reset", thrown.getSuppressed()[0].getMessage());
    }

    @Test
    void storeOutageFailsTheSendsStageRatherThanThrowingFromSend() {
        io.streamsaga.idempotency.spi.DeduplicationStore down = new CompleteFailsOnce(store) {
            @Override
            public ClaimOutcome tryClaim(String key, String owner, java.time.Instant now, Duration lease) {
                throw new IllegalStateException("database down");
            }
        };
        IdempotentProducer producer = IdempotentProducer.builder(bus, down).build();
        var stage = producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, Map.of())).toCompletableFuture();
        var error = assertThrows(java.util.concurrent.CompletionException.class, stage::join);
        assertEquals("database down", error.getCause().getMessage());
        assertTrue(transport.messages("payment-requested").isEmpty());
    }

    @Test
    void keysAndEventsDifferingOnlyInALoneSurrogateGetDifferentIdsAndWellFormedOnesKeepTheirIds() throws Exception {
        IdempotentProducer producer = IdempotentProducer.builder(bus, store).build();
        // UTF-8 turns every lone surrogate into '?': these once got one id, and the second send was skipped.
        assertFalse(producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, Map.of()), "pay-\uD800")
                .toCompletableFuture().join().skipped());
        assertFalse(producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, Map.of()), "pay-\uDC00")
                .toCompletableFuture().join().skipped());
        assertNotEquals(producer.messageIdOf("payment-requested", new PaymentRequested("o-\uD800", 10, Map.of())),
                producer.messageIdOf("payment-requested", new PaymentRequested("o-?", 10, Map.of())));
        // A well-formed event keeps the id it had: the SHA-256 of its canonical form's UTF-8 bytes.
        String canonical = "payment-requested\npayment-requested\n1\n{\"amount\":10,\"meta\":{},\"orderId\":\"o-\u00e9\uD83D\uDE00\"}";
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                        .digest(canonical.getBytes(java.nio.charset.StandardCharsets.UTF_8))),
                producer.messageIdOf("payment-requested", new PaymentRequested("o-\u00e9\uD83D\uDE00", 10, Map.of())));
    }

    @Test
    void sendThatWasPublishedSucceedsWhenMarkingItsIdDoneFails() {
        IdempotentProducer producer = IdempotentProducer.builder(bus, new CompleteFailsOnce(store)).build();
        PaymentRequested event = new PaymentRequested("o-1", 10, Map.of());
        IdempotentProducer.SendResult sent = producer.send("payment-requested", "o-1", event).toCompletableFuture().join();
        assertFalse(sent.skipped());
        assertTrue(sent.position().isPresent(), "the message was written, and the caller is told so");
        assertEquals(1, transport.messages("payment-requested").size());
    }

    @Test
    void aSendAfterOneWhoseIdCouldNotBeMarkedDoneFailsAsInProgressUntilTheLeaseEndsThenGoesOutAgain() {
        IdempotentProducer producer = IdempotentProducer.builder(bus, new CompleteFailsOnce(store))
                .lease(Duration.ofSeconds(30)).build();
        PaymentRequested event = new PaymentRequested("o-1", 10, Map.of());
        assertFalse(producer.send("payment-requested", "o-1", event).toCompletableFuture().join().skipped());

        // The id is not done: its claim holds until the lease ends, so a send of it meanwhile is in progress.
        var inProgress = assertThrows(java.util.concurrent.CompletionException.class,
                producer.send("payment-requested", "o-1", event).toCompletableFuture()::join);
        assertInstanceOf(ClaimInProgressException.class, inProgress.getCause());
        scheduler.advance(Duration.ofSeconds(30));
        var again = producer.send("payment-requested", "o-1", event).toCompletableFuture().join();

        assertFalse(again.skipped(), "once the lease ended, the send goes out again");
        List<Message> written = transport.messages("payment-requested");
        assertEquals(2, written.size());
        assertEquals(written.get(0).id(), written.get(1).id(), "the duplicate has the same id, for consumers to drop");
    }

    @Test
    void eachOutcomeOfASendThatIsNotWrittenIsCounted() {
        InMemoryMetrics metrics = new InMemoryMetrics();
        try (EventBus countedBus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class).build())
                .scheduler(scheduler).metrics(metrics).build()) {
            IdempotentProducer producer = IdempotentProducer.builder(countedBus, store).build();
            PaymentRequested event = new PaymentRequested("o-1", 10, Map.of());
            producer.send("payment-requested", "o-1", event).toCompletableFuture().join();
            producer.send("payment-requested", "o-1", event).toCompletableFuture().join(); // skipped
            // another producer sharing the store is sending this one right now
            PaymentRequested other = new PaymentRequested("o-2", 10, Map.of());
            assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("producer/payment-requested/"
                    + producer.messageIdOf("payment-requested", other), "other-producer", scheduler.now(), Duration.ofMinutes(1)));
            var inProgress = assertThrows(java.util.concurrent.CompletionException.class,
                    producer.send("payment-requested", "o-2", other).toCompletableFuture()::join);
            assertInstanceOf(ClaimInProgressException.class, inProgress.getCause());

            Map<String, String> topic = Map.of("topic", "payment-requested");
            assertEquals(1, metrics.counter(IdempotentProducer.SKIPPED_METRIC, topic));
            assertEquals(1, metrics.counter(IdempotentProducer.IN_PROGRESS_METRIC, topic));
        }
    }

    @Test
    void twoGroupsSharingAStoreEachProcessTheMessage() {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "payment-requested", PaymentRequested.class, consumer.wrap((e, ctx) -> handled.add(ctx.group())));
        bus.subscribe("audit", "payment-requested", PaymentRequested.class, consumer.wrap((e, ctx) -> handled.add(ctx.group())));
        bus.publish(payment("o-1"));
        transport.drainAll();
        assertEquals(2, handled.size());
    }

    /**
     * The default key joined group and message id with '/': group billing/eu handling message 7 and group billing
     * handling message eu/7 had one key in a shared store, so the second was skipped as a duplicate it was not.
     */
    @Test
    void groupsAndIdsThatRunTogetherTheSameWayStillGetKeysOfTheirOwnAndPlainOnesKeepTheirKeys() {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, store).build();
        List<String> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing/eu", "orders", Message.class, consumer.wrap((m, ctx) -> handled.add(ctx.group() + " " + m.id())));
        bus.subscribe("billing", "orders", Message.class, consumer.wrap((m, ctx) -> handled.add(ctx.group() + " " + m.id())));
        bus.publish(Message.builder("orders").id("7").type("order").payload(Map.of()).build());
        bus.publish(Message.builder("orders").id("eu/7").type("order").payload(Map.of()).build());
        transport.drainAll();

        assertEquals(4, handled.size(), handled.toString());
        // a group and an id holding neither '/' nor '\' keep the key earlier versions gave them: group + '/' + id
        assertEquals(ClaimOutcome.DONE, store.tryClaim("billing/7", "x", scheduler.now(), Duration.ofMinutes(1)));
    }

    @Test
    void windowShorterThanTheReplayHorizonIsRefused() {
        InMemoryTransport retained = InMemoryTransport.builder().retention(Duration.ofDays(7)).build();
        try (EventBus retainedBus = EventBus.builder(retained).build()) {
            InMemoryDeduplicationStore shortWindow = InMemoryDeduplicationStore.builder().window(Duration.ofHours(1)).build();
            ConfigurationException error = assertThrows(ConfigurationException.class,
                    () -> IdempotentConsumer.builder(retainedBus, shortWindow).build());
            assertTrue(error.getMessage().contains("PT1H") && error.getMessage().contains("PT168H"), error.getMessage());
            assertThrows(ConfigurationException.class, () -> IdempotentProducer.builder(retainedBus, shortWindow).build());
        } finally {
            retained.close();
        }
    }

    @Test
    void sendingTheSameMessageTwiceDeliversItOnce() {
        IdempotentProducer producer = IdempotentProducer.builder(bus, store).build();
        List<Message> received = new CopyOnWriteArrayList<>();
        bus.subscribe("payments", "payment-requested", Message.class, (m, ctx) -> received.add(m));
        // same content, map keys in another order: the canonical JSON is the same
        var first = producer.send("payment-requested", "o-1",
                new PaymentRequested("o-1", 10, new java.util.LinkedHashMap<>(Map.of("a", "1")) {{ put("b", "2"); }}))
                .toCompletableFuture().join();
        java.util.LinkedHashMap<String, String> reordered = new java.util.LinkedHashMap<>();
        reordered.put("b", "2");
        reordered.put("a", "1");
        var second = producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, reordered))
                .toCompletableFuture().join();
        transport.drainAll();

        assertFalse(first.skipped());
        assertTrue(second.skipped());
        assertEquals(first.messageId(), second.messageId());
        assertEquals(1, received.size());
        assertEquals(first.messageId(), received.get(0).id());
        assertEquals(64, first.messageId().length());
    }

    @Test
    void failedSendReleasesItsClaimSoTheRetryIsSent() {
        InMemoryTransport down = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        down.close();
        try (EventBus downBus = EventBus.builder(down)
                .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class).build())
                .scheduler(scheduler).build()) {
            PaymentRequested event = new PaymentRequested("o-1", 10, Map.of());
            assertThrows(java.util.concurrent.CompletionException.class, () -> IdempotentProducer.builder(downBus, store).build()
                    .send("payment-requested", "o-1", event).toCompletableFuture().join());
            var retried = IdempotentProducer.builder(bus, store).build().send("payment-requested", "o-1", event)
                    .toCompletableFuture().join();
            assertFalse(retried.skipped());
            assertEquals(1, transport.messages("payment-requested").size());
        }
    }

    @Test
    void sendOfAMessageWhoseOtherSendIsInProgressIsNotReportedSentWhenThatSendThenFails() {
        // The interceptor runs inside the first send's publish, so the second send comes while the first holds
        // the claim, and the first then fails: the second must not have been told "skipped (already sent)".
        PaymentRequested event = new PaymentRequested("o-1", 10, Map.of());
        IdempotentProducer[] producer = new IdempotentProducer[1];
        List<java.util.concurrent.CompletableFuture<IdempotentProducer.SendResult>> concurrent = new CopyOnWriteArrayList<>();
        io.streamsaga.bus.MessageInterceptor brokerDownOnce = new io.streamsaga.bus.MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, io.streamsaga.codec.EventCodec codec) {
                if (concurrent.isEmpty()) {
                    concurrent.add(producer[0].send("payment-requested", "o-1", event).toCompletableFuture());
                    throw new IllegalStateException("broker unreachable");
                }
                return message;
            }
        };
        try (EventBus flakyBus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class).build())
                .scheduler(scheduler).interceptor(brokerDownOnce).build()) {
            producer[0] = IdempotentProducer.builder(flakyBus, store).build();
            var first = producer[0].send("payment-requested", "o-1", event).toCompletableFuture();

            assertThrows(java.util.concurrent.CompletionException.class, first::join, "the broker was unreachable");
            var inProgress = assertThrows(java.util.concurrent.CompletionException.class, concurrent.get(0)::join,
                    "the concurrent send must not report the message sent: the send it counted on failed");
            assertInstanceOf(ClaimInProgressException.class, inProgress.getCause());
            assertTrue(((ClaimInProgressException) inProgress.getCause()).isRetriable());
            assertTrue(transport.messages("payment-requested").isEmpty());

            var retried = producer[0].send("payment-requested", "o-1", event).toCompletableFuture().join();
            assertFalse(retried.skipped(), "the retry of the concurrent send finds the claim released and sends");
            assertEquals(1, transport.messages("payment-requested").size());
        }
    }

    @Test
    void applicationKeyDecidesSamenessWhenGiven() {
        IdempotentProducer producer = IdempotentProducer.builder(bus, store).build();
        var first = producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, Map.of()), "request-7")
                .toCompletableFuture().join();
        var retried = producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 11, Map.of()), "request-7")
                .toCompletableFuture().join();
        var other = producer.send("payment-requested", "o-1", new PaymentRequested("o-1", 10, Map.of()))
                .toCompletableFuture().join();
        assertFalse(first.skipped());
        assertTrue(retried.skipped());
        assertFalse(other.skipped());
        assertNotEquals(first.messageId(), other.messageId());
        assertEquals(2, transport.messages("payment-requested").size());
    }
}
