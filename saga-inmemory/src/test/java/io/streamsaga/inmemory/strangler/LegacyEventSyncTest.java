package io.streamsaga.inmemory.strangler;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.strangler.LegacyEventSync;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LegacyEventSyncTest {
    record LegacyOrderCreated(String orderNo, long amount) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("order-created-legacy", 1, LegacyOrderCreated.class).build())
            .retryPolicy(RetryPolicy.builder().maxAttempts(3).build())
            .scheduler(new VirtualScheduler()).build();
    private final Map<String, Long> newSystem = new ConcurrentHashMap<>();
    private final AtomicInteger writes = new AtomicInteger();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private Message legacyEvent(String messageId, String orderNo) {
        return Message.builder("order-created-legacy").id(messageId).key(orderNo).type("order-created-legacy")
                .payload(new LegacyOrderCreated(orderNo, 10)).build();
    }

    @Test
    void redeliveredLegacyEventIsWrittenOnce() {
        LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy", LegacyOrderCreated.class, e -> {
            writes.incrementAndGet();
            newSystem.put(e.orderNo(), e.amount());
        }).build().start();
        bus.publish(legacyEvent("m-1", "A-1"));
        bus.publish(legacyEvent("m-2", "A-2"));
        bus.publish(legacyEvent("m-1", "A-1")); // the legacy outbox sent it again
        transport.drainAll();

        assertEquals(Map.of("A-1", 10L, "A-2", 10L), newSystem);
        assertEquals(2, writes.get());
        assertEquals(2, sync.synced());
        assertEquals(1, sync.duplicatesSkipped());
    }

    @Test
    void failedWriteIsRetriedNotMarkedSeen() {
        AtomicInteger attempts = new AtomicInteger();
        LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy", LegacyOrderCreated.class, e -> {
            if (attempts.incrementAndGet() == 1) {
                throw new IllegalStateException("new system briefly down");
            }
            newSystem.put(e.orderNo(), e.amount());
        }).build().start();
        bus.publish(legacyEvent("m-1", "A-1"));
        transport.drainAll();

        assertEquals(2, attempts.get());
        assertEquals(Map.of("A-1", 10L), newSystem);
        assertEquals(1, sync.synced());
        assertEquals(0, sync.duplicatesSkipped());
        assertEquals(List.of(), transport.messages("order-created-legacy.DLT"));
    }

    @Test
    void businessKeyDeduplicatesEventsWithDifferentMessageIds() {
        LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy", LegacyOrderCreated.class,
                e -> writes.incrementAndGet()).dedupeBy((e, ctx) -> e.orderNo()).seenCapacity(2).build().start();
        bus.publish(legacyEvent("m-1", "A-1"));
        bus.publish(legacyEvent("m-2", "A-1"));
        bus.publish(legacyEvent("m-3", "A-2"));
        bus.publish(legacyEvent("m-4", "A-3"));
        transport.drainAll();
        assertEquals(3, writes.get());
        assertEquals(1, sync.duplicatesSkipped());
        assertEquals(1, sync.evictions());
    }
}
