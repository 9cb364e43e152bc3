package io.streamsaga.inmemory.choreography;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * A subscription's close waits for its handler to return; the tracker's handler takes the tracker's lock. Closing
 * the subscriptions while holding that lock (close(), and a start that failed at a later topic closing the ones it
 * made) left a handler blocked on it: the subscription's close gave up waiting after its timeout (10 s in memory,
 * twice the close timeout on Kafka) and returned with that handler still to run.
 */
class FlowTrackerClosesOutsideItsLockTest {
    record Item(String orderId) {
    }

    /** What a test sees of one topic's subscription. */
    static final class Watch {
        volatile Thread worker;
        volatile boolean handled;
        volatile boolean refuse;
        volatile Runnable beforeClose = () -> { };
        volatile Boolean workerRunningWhenClosed;

        /** Its handler is waiting for a lock, or has handled a record. */
        boolean blockedOrHandled() {
            Thread thread = worker;
            return handled || (thread != null && thread.getState() == Thread.State.BLOCKED);
        }
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build();
    private final Map<String, Watch> watches = Map.of("a", new Watch(), "b", new Watch());
    private final EventBus bus;

    FlowTrackerClosesOutsideItsLockTest() {
        Transport watched = mock(Transport.class, delegatesTo(transport));
        doAnswer(call -> {
            TopicPattern pattern = call.getArgument(1);
            Watch watch = watches.get(pattern.pattern());
            if (watch.refuse) {
                await().atMost(Duration.ofSeconds(30)).until(watches.get("a")::blockedOrHandled);
                throw new IllegalStateException("topic " + pattern + ": not authorized");
            }
            RecordHandler handler = call.getArgument(3);
            Subscription subscription = transport.subscribe(call.getArgument(0), pattern, call.getArgument(2), record -> {
                watch.worker = Thread.currentThread();
                handler.handle(record);
                watch.handled = true;
            });
            return new Subscription() {
                @Override
                public String group() {
                    return subscription.group();
                }

                @Override
                public TopicPattern pattern() {
                    return subscription.pattern();
                }

                @Override
                public boolean isActive() {
                    return subscription.isActive();
                }

                @Override
                public void close() {
                    watch.beforeClose.run();
                    subscription.close();
                    Thread worker = watch.worker;
                    watch.workerRunningWhenClosed = worker != null && worker.isAlive();
                }
            };
        }).when(watched).subscribe(any(), any(), any(), any());
        bus = EventBus.builder(watched).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private static FlowDefinition flow() {
        return FlowDefinition.builder("order").event("a", "A", "B").event("b", "B")
                .succeedsOn("b").deadline(Duration.ofMinutes(1)).build();
    }

    @Test
    void aStartThatFailsAtALaterTopicClosesTheEarlierOnesWithoutBlockingTheirHandler() {
        bus.publish("a", "o-1", new Item("o-1")).toCompletableFuture().join();
        watches.get("b").refuse = true; // once topic a's handler has its record
        try (FlowTracker tracker = FlowTracker.builder(bus, flow()).build()) {
            assertEquals("topic b: not authorized", assertThrows(IllegalStateException.class,
                    () -> tracker.start(StartPosition.EARLIEST)).getMessage());

            assertFalse(watches.get("a").workerRunningWhenClosed,
                    "topic a's handler waited for the tracker's lock, held by the failed start closing its subscription");
        }
    }

    @Test
    void closeDoesNotBlockAHandlerOfASubscriptionItHasStillToClose() {
        try (FlowTracker tracker = FlowTracker.builder(bus, flow()).build()) {
            tracker.start(StartPosition.EARLIEST);
            // While close() closes topic a's subscription, a record reaches topic b's handler.
            watches.get("a").beforeClose = () -> {
                bus.publish("b", "o-1", new Item("o-1")).toCompletableFuture().join();
                await().atMost(Duration.ofSeconds(30)).until(watches.get("b")::blockedOrHandled);
            };
            tracker.close();

            assertFalse(watches.get("b").workerRunningWhenClosed,
                    "topic b's handler waited for the tracker's lock, held by close() closing its subscription");
        }
    }
}
