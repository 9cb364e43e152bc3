package io.streamsaga.inmemory.kappa;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.doThrow;
import static org.mockito.Mockito.mock;

/**
 * {@link Reprocessor#start}: a start that failed at its second topic's subscription (here the transport cannot
 * subscribe to it) left the first topic's subscription running: its handler went on replaying into the application,
 * under a group no {@link Replay} handle could close, until the process ended. A failed start now closes what it
 * subscribed (the transport may still list the group as known, as Kafka lists an empty group: start again under
 * a new name, as after any start). A start refused because a later topic's class is one the bus's codec cannot decode
 * to (left out of the registry) subscribes nothing at all, so that the same group starts once the class is registered.
 */
class ReprocessorFailedStartTest {
    record OrderCreated(String orderId) {
    }

    record OrderShipped(String orderId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
    private final Transport failingOnOther = mock(Transport.class, delegatesTo(transport));
    private final EventBus bus = EventBus.builder(failingOnOther)
            .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
            .scheduler(new VirtualScheduler()).build();
    private final List<String> seen = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aStartThatFailsAtALaterTopicClosesTheSubscriptionsItMadeBeforeItThrows() {
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        doThrow(new IllegalStateException("cannot subscribe")).when(failingOnOther)
                .subscribe(eq("stats-v2.other"), any(), any(), any());
        Reprocessor failing = Reprocessor.builder(bus)
                .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId()))
                .on("other", OrderCreated.class, (e, ctx) -> { })
                .build();

        assertEquals("cannot subscribe", assertThrows(IllegalStateException.class, () -> failing.start("stats-v2"))
                .getMessage());
        transport.drainAll();

        assertEquals(List.of(), seen, "nothing replayed by a start that failed");
        bus.publish("order-created", "k", new OrderCreated("o-2"));
        transport.drainAll();
        assertEquals(List.of(), seen, "nor later");

        Replay replay = Reprocessor.builder(bus).on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId()))
                .build().start("stats-v3");
        transport.drainAll();
        assertEquals(List.of("o-1", "o-2"), seen);
        assertTrue(replay.isCaughtUp());
        replay.close();
    }

    @Test
    void aStartRefusedForALaterTopicsUnregisteredClassSubscribesNothingSoTheSameGroupStartsOnceItIsRegistered() {
        bus.publish("order-created", "k", new OrderCreated("o-1"));
        Reprocessor refused = Reprocessor.builder(bus)
                .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId()))
                .on("order-shipped", OrderShipped.class, (e, ctx) -> { })
                .build();

        ConfigurationException e = assertThrows(ConfigurationException.class, () -> refused.start("stats-v2"));
        assertTrue(e.getMessage().contains(OrderShipped.class.getName() + " is not registered"), e.getMessage());
        transport.drainAll();
        assertEquals(List.of(), seen, "nothing replayed by a refused start");
        assertTrue(Reprocessor.isUnused(transport, "stats-v2", List.of("order-created", "order-shipped")),
                "no group of the refused start is known to the transport");

        EventBus registered = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                        .register("order-shipped", 1, OrderShipped.class).build())
                .scheduler(new VirtualScheduler()).build();
        try {
            Replay replay = Reprocessor.builder(registered)
                    .on("order-created", OrderCreated.class, (c, ctx) -> seen.add(c.orderId()))
                    .on("order-shipped", OrderShipped.class, (s, ctx) -> { })
                    .build().start("stats-v2");
            transport.drainAll();
            assertEquals(List.of("o-1"), seen);
            assertTrue(replay.isCaughtUp());
            replay.close();
        } finally {
            registered.close();
        }
    }
}
