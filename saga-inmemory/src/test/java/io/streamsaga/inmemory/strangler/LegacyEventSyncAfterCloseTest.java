package io.streamsaga.inmemory.strangler;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.strangler.LegacyEventSync;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link LegacyEventSync#close()} before {@link LegacyEventSync#start()} (a shutdown during an application's
 * startup): start() then still subscribed, and that subscription went on writing legacy events into the new system
 * with nothing left to close it. A closed sync refuses to start, as a closed aggregator, serving layer or flow
 * tracker does.
 */
class LegacyEventSyncAfterCloseTest {
    record LegacyOrderCreated(String orderNo, long amount) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("order-created-legacy", 1, LegacyOrderCreated.class).build())
            .scheduler(new VirtualScheduler()).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aSyncClosedBeforeItStartedRefusesToStart() {
        List<LegacyOrderCreated> written = new CopyOnWriteArrayList<>();
        LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy",
                LegacyOrderCreated.class, written::add).build();
        sync.close();

        assertEquals("legacy sync of 'order-created-legacy' is closed",
                assertThrows(ConfigurationException.class, sync::start).getMessage());
        bus.publish("order-created-legacy", "A-1", new LegacyOrderCreated("A-1", 10)).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(List.of(), written, "a closed sync writes nothing into the new system");
    }

    @Test
    void aStartedSyncClosedRefusesToStartAgain() {
        LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy",
                LegacyOrderCreated.class, e -> { }).build().start();
        sync.close();

        assertEquals("legacy sync of 'order-created-legacy' is closed",
                assertThrows(ConfigurationException.class, sync::start).getMessage());
    }
}
