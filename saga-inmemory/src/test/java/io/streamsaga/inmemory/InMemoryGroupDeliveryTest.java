package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A consumer group on the in-memory transport while its membership changes and while its bus closes: the group's
 * partitions move between its members without losing, repeating or reordering a key's records, and a record whose
 * handler waits out a retry's backoff when the bus closes is neither acknowledged nor dead-lettered.
 */
class InMemoryGroupDeliveryTest {
    record Tick(String key, int seq) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("tick", 1, Tick.class).build();

    @Test
    void membersJoiningAndLeavingWhileRecordsFlowDeliverEachRecordOnceToTheGroupInKeyOrder() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(8).build();
        try (EventBus bus = EventBus.builder(transport).types(TYPES).build()) {
            Map<String, List<Integer>> seen = new ConcurrentHashMap<>();
            AtomicInteger handled = new AtomicInteger();
            EventHandler<Tick> handler = (tick, ctx) -> {
                seen.computeIfAbsent(tick.key(), k -> new CopyOnWriteArrayList<>()).add(tick.seq());
                handled.incrementAndGet();
            };
            List<Subscription> members = new ArrayList<>();
            for (int m = 0; m < 3; m++) {
                members.add(bus.subscribe("workers", "ticks", Tick.class, SubscriptionOptions.fromEarliest(), handler));
            }
            int keys = 20;
            int perKey = 500;
            for (int seq = 0; seq < perKey; seq++) {
                for (int k = 0; k < keys; k++) {
                    bus.publish("ticks", "k" + k, new Tick("k" + k, seq));
                }
                if (seq == 100) {
                    members.get(0).close(); // its partitions move to the others while it may be delivering
                }
                if (seq == 200) {
                    members.add(bus.subscribe("workers", "ticks", Tick.class, handler));
                }
                if (seq == 300) {
                    members.get(1).close();
                }
            }
            await().atMost(Duration.ofSeconds(30)).until(() -> handled.get() >= keys * perKey);

            List<Integer> inOrder = new ArrayList<>();
            for (int seq = 0; seq < perKey; seq++) {
                inOrder.add(seq);
            }
            for (int k = 0; k < keys; k++) {
                assertEquals(inOrder, seen.get("k" + k), "key k" + k + ": each record once, in order");
            }
            assertEquals(keys * perKey, handled.get());
        }
    }

    @Test
    void aBusClosedWhileAHandlerWaitsOutItsRetryBackoffLeavesTheRecordToTheGroupsNextMemberNotDeadLettered()
            throws InterruptedException {
        InMemoryTransport transport = InMemoryTransport.create();
        EventBus bus = EventBus.builder(transport).types(TYPES)
                .retryPolicy(RetryPolicy.builder().maxAttempts(5).initialBackoff(Duration.ofHours(1)).jitter(0).build())
                .build();
        CountDownLatch failed = new CountDownLatch(1);
        bus.subscribe("payments", "ticks", Tick.class, (tick, ctx) -> {
            failed.countDown();
            throw new IllegalStateException("payment service down");
        });
        bus.publish("ticks", "a", new Tick("a", 1)).toCompletableFuture().join();
        assertTrue(failed.await(30, TimeUnit.SECONDS));

        bus.close(); // the handler's thread sleeps the hour's backoff of its second attempt
        assertEquals(List.of(), transport.messages("ticks.DLT"));
        assertEquals(Map.of(0, 0L, 1, 0L, 2, 0L, 3, 0L), transport.committedOffsets("payments", "ticks"));
        CountDownLatch redelivered = new CountDownLatch(1);
        try (EventBus restarted = EventBus.builder(transport).types(TYPES).build()) {
            restarted.subscribe("payments", "ticks", Tick.class, (tick, ctx) -> redelivered.countDown());
            assertTrue(redelivered.await(30, TimeUnit.SECONDS), "the record is delivered to the group's next member");
        }
        transport.close();
    }
}
