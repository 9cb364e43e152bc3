package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * {@link EventBus#close()} closes every subscription made through the bus; yet a closed bus still subscribed, and
 * the subscription it handed out kept delivering with nothing left to close it (the application had closed the
 * bus), as did one whose subscribe was under way while the bus closed. A closed bus now refuses to subscribe, as a
 * closed aggregator, serving layer or flow tracker refuses, and closes a subscription it made during its close.
 */
class BusSubscribeAfterCloseTest {
    record Item(String id) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(1)
            .deliveryMode(DeliveryMode.MANUAL).build();
    private final TypeRegistry types = TypeRegistry.builder().register("item", 1, Item.class).build();

    @AfterEach
    void closeTransport() {
        transport.close();
    }

    @Test
    void aClosedBusRefusesToSubscribe() {
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types).build();
        bus.close();
        List<Item> handled = new CopyOnWriteArrayList<>();

        assertEquals("event bus is closed: group 'g' cannot subscribe to 'items'", assertThrows(ConfigurationException.class,
                () -> bus.subscribe("g", "items", Item.class, (item, ctx) -> handled.add(item))).getMessage());

        EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types).build()
                .publish("items", "k", new Item("i-1")).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(List.of(), handled, "nothing is delivered to a closed bus's handler");
    }

    @Test
    void aSubscriptionMadeWhileTheBusClosesIsClosedToo() {
        AtomicReference<EventBus> busRef = new AtomicReference<>();
        AtomicReference<Subscription> made = new AtomicReference<>();
        Transport watched = mock(Transport.class, delegatesTo(transport));
        doAnswer(call -> { // the bus closes while the transport subscribes (here on the same thread, deterministic)
            Subscription subscription = transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    call.getArgument(3));
            made.set(subscription);
            busRef.get().close();
            return subscription;
        }).when(watched).subscribe(any(), any(), any(), any());
        EventBus bus = EventBus.builder(watched).scheduler(new VirtualScheduler()).types(types).build();
        busRef.set(bus);

        assertThrows(ConfigurationException.class, () -> bus.subscribe("g", "items", Item.class, (item, ctx) -> { }));
        assertFalse(made.get().isActive(), "the bus's close() missed the subscription being made: nothing closed it");
    }
    @Test
    void aClosedBusRefusesToPublish() {
        // A closed bus published still: the application had closed it, and its events went out all the same.
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types).build();
        List<Item> handled = new CopyOnWriteArrayList<>();
        EventBus reader = EventBus.builder(transport).scheduler(new VirtualScheduler()).types(types).build();
        reader.subscribe("g", "items", Item.class, (item, ctx) -> handled.add(item));
        bus.close();

        for (java.util.concurrent.CompletionStage<?> stage : List.of(bus.publish("items", "k", new Item("i-1")),
                bus.publish("items", "k", new Item("i-2"), java.util.Map.of("h", "v")),
                bus.publish(io.streamsaga.message.Message.builder("items").type("item").payload(new Item("i-3")).build()))) {
            java.util.concurrent.CompletionException failed = assertThrows(java.util.concurrent.CompletionException.class,
                    stage.toCompletableFuture()::join);
            assertEquals(ConfigurationException.class, failed.getCause().getClass());
            assertEquals("event bus is closed: cannot publish to 'items'", failed.getCause().getMessage());
        }
        transport.drainAll();
        assertEquals(List.of(), handled, "nothing was sent");
        reader.close();
    }
}
