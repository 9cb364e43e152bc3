package io.streamsaga.inmemory;

import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.patterns.InMemoryPayloadStore;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DeadLetterRedrive} of a claim-checked message ({@link ClaimCheckInterceptor}): its dead letter holds the
 * reference, which the run sends back as it is, so the payload is neither copied into the log nor stored twice, and
 * it stays in the store for the dead letter, which is still in the dead-letter topic, until the claim check's expiry.
 * On the in-memory log in MANUAL mode, the test's drains delivering.
 */
class ClaimCheckedDeadLetterRedriveTest {

    record LargeOrder(String orderId, String items) {
    }

    private static final String TOPIC = "large-order";
    private static final String DLT = TOPIC + MessageHeaders.DEAD_LETTER_SUFFIX;

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryPayloadStore store = new InMemoryPayloadStore();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler)
            .threshold(1024).expiry(Duration.ofDays(1)).sweepInterval(Duration.ofHours(1)).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("large-order", 1, LargeOrder.class).build())
            .scheduler(scheduler).interceptor(claimCheck).build();

    @AfterEach
    void close() {
        bus.close();
        claimCheck.close();
        transport.close();
    }

    private DeadLetterRedrive.Report finished(DeadLetterRedrive.Run run) throws Exception {
        CompletableFuture<DeadLetterRedrive.Report> finished = run.finished().toCompletableFuture();
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(10)).pollInSameThread().until(() -> {
            transport.drainAll();
            return finished.isDone();
        });
        return finished.get(0, TimeUnit.SECONDS);
    }

    @Test
    void aClaimCheckedLetterIsSentBackAsItsReferenceAndItsPayloadStaysForTheDeadLetterUntilTheExpiry() throws Exception {
        AtomicBoolean broken = new AtomicBoolean(true);
        List<LargeOrder> billed = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", TOPIC, LargeOrder.class, SubscriptionOptions.fromEarliest().withRetryPolicy(RetryPolicy.NONE),
                (order, ctx) -> {
                    if (broken.get()) {
                        throw new IllegalStateException("bug");
                    }
                    billed.add(order);
                });
        LargeOrder order = new LargeOrder("o-1", "x".repeat(20_000));
        bus.publish(TOPIC, "o-1", order).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(1, transport.messages(DLT).size());
        broken.set(false); // the bug is fixed

        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(DeadLetterRedrive.builder(bus, DLT).build().start()));
        transport.drainAll();

        assertEquals(List.of(order), billed, "handled once, with its payload");
        Message original = transport.messages(TOPIC).get(0);
        Message redriven = transport.messages(TOPIC).get(1);
        assertEquals(PayloadReference.fromHeaders(original.headers()), PayloadReference.fromHeaders(redriven.headers()),
                "sent back as the original's reference");
        assertTrue(((byte[]) redriven.payload()).length < 300, "not with the payload itself");
        assertEquals(1, store.size(), "stored once");

        // billing acknowledged the redriven message, yet the dead letter stays in its topic and still resolves
        List<LargeOrder> inspected = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", DLT, LargeOrder.class, SubscriptionOptions.fromEarliest(), (letter, ctx) -> inspected.add(letter));
        transport.drainAll();
        assertEquals(List.of(order), inspected, "the dead letter resolves to the full payload");
        assertEquals(1, store.size());
        scheduler.advance(Duration.ofDays(1).plusHours(1));
        assertEquals(0, store.size(), "the expiry sweep deleted it");
    }
}
