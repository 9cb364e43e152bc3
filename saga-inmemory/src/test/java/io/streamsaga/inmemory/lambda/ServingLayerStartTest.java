package io.streamsaga.inmemory.lambda;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * {@link ServingLayer#start()} subscribed while holding the layer's lock, which every query takes: on a broker,
 * where subscribe waits for the group's assignment (seconds), queries waited as long. And a layer closed before it
 * was started still subscribed when started, a subscription nothing closed. A close() during start() waits for the
 * subscription being made and closes it before it returns.
 */
class ServingLayerStartTest {
    record Sale(long amount) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final CountDownLatch subscribing = new CountDownLatch(1);
    private final CountDownLatch assigned = new CountDownLatch(1);
    private final Transport slowToAssign = mock(Transport.class, delegatesTo(transport));
    private final AtomicBoolean deliverOnSubscribe = new AtomicBoolean();
    private final EventBus bus;

    ServingLayerStartTest() {
        doAnswer(call -> {
            subscribing.countDown();
            assertTrue(assigned.await(30, TimeUnit.SECONDS)); // a broker's group join and assignment
            Object made = transport.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2), call.getArgument(3));
            if (deliverOnSubscribe.get()) {
                transport.drainAll();
            }
            return made;
        }).when(slowToAssign).subscribe(any(), any(), any(), any());
        bus = EventBus.builder(slowToAssign).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("sale", 1, Sale.class).build()).build();
    }

    @AfterEach
    void close() {
        assigned.countDown();
        bus.close();
        transport.close();
    }

    private ServingLayer<Sale, Long> layer() {
        return ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (total, sale) -> total + sale.amount()).merge(Long::sum).build();
    }

    @Test
    void queriesAreAnsweredWhileStartWaitsForTheSubscription() throws Exception {
        ServingLayer<Sale, Long> layer = layer();
        CompletableFuture<ServingLayer<Sale, Long>> starting = CompletableFuture.supplyAsync(layer::start);
        assertTrue(subscribing.await(30, TimeUnit.SECONDS));

        CompletableFuture<Long> query = CompletableFuture.supplyAsync(layer::query);
        assertEquals(0L, query.get(30, TimeUnit.SECONDS), "answered while start() waits (it waited for start before)");
        assertEquals("serving layer 'sales' is already started",
                assertThrows(ConfigurationException.class, layer::start).getMessage());

        assigned.countDown();
        starting.get(30, TimeUnit.SECONDS);
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(5L, layer.query());
        layer.close();
    }

    @Test
    void aCloseDuringStartReturnsOnlyOnceTheSubscriptionStartMakesIsClosed() throws Exception {
        // close() during start() returned at once and left the subscription start was making to start() to close,
        // after its subscribe returned (seconds on a broker): meanwhile it went on folding events into the closed
        // layer, whose view still changed after close() had returned.
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicBoolean foldedAfterClose = new AtomicBoolean();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (Long total, Sale sale) -> {
                    foldedAfterClose.compareAndSet(false, closeReturned.get());
                    return total + sale.amount();
                }).merge(Long::sum).build();
        deliverOnSubscribe.set(true); // the member's first poll, right after its assignment
        CompletableFuture<ServingLayer<Sale, Long>> starting = CompletableFuture.supplyAsync(layer::start);
        assertTrue(subscribing.await(30, TimeUnit.SECONDS));
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();

        AtomicReference<Thread> closer = new AtomicReference<>();
        CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> {
            closer.set(Thread.currentThread());
            layer.close();
            closeReturned.set(true);
        });
        await().atMost(Duration.ofSeconds(30)).until(() -> closing.isDone()
                || (closer.get() != null && (closer.get().getState() == Thread.State.WAITING
                        || closer.get().getState() == Thread.State.BLOCKED))); // close() waits for start()
        assigned.countDown();
        closing.get(30, TimeUnit.SECONDS);
        starting.get(30, TimeUnit.SECONDS);

        assertFalse(foldedAfterClose.get(), "the subscription start made folded an event after close() returned");
        bus.publish("sales", "k", new Sale(7)).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(5L, layer.query(), "nothing folded after close");
    }

    @Test
    void aCloseFromAHandlerTheTransportRunsInsideSubscribeDoesNotWaitForItsOwnStart() throws Exception {
        assigned.countDown();
        AtomicReference<ServingLayer<Sale, Long>> self = new AtomicReference<>();
        ServingLayer<Sale, Long> layer = ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (Long total, Sale sale) -> {
                    self.get().close(); // on the thread of start(), still inside subscribe
                    return total + sale.amount();
                }).merge(Long::sum).build();
        self.set(layer);
        deliverOnSubscribe.set(true);
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();

        CompletableFuture.supplyAsync(layer::start).get(30, TimeUnit.SECONDS);
        bus.publish("sales", "k", new Sale(7)).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(5L, layer.query(), "start() closed the subscription the close inside it could not");
    }

    @Test
    void aLayerClosedBeforeItStartedRefusesToStart() {
        assigned.countDown();
        ServingLayer<Sale, Long> layer = layer();
        layer.close();

        assertEquals("serving layer 'sales' is closed", assertThrows(ConfigurationException.class, layer::start).getMessage());
        bus.publish("sales", "k", new Sale(5)).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(0L, layer.query(), "nothing subscribed");
    }
}
