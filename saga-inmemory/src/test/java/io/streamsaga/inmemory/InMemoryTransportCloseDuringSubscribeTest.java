package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * {@link InMemoryTransport#close()} closes every subscription; yet one whose subscribe had passed the closed check
 * when close() ran, and joined its group after close() had collected the members, was left open: a member of its
 * group with its consumer thread running, on a closed transport that nothing would close again. A close() now
 * collects the members under the lock subscribe joins a group under, and a subscribe finding the transport closed
 * there refuses.
 */
class InMemoryTransportCloseDuringSubscribeTest {

    @Test
    void aSubscriptionJoiningItsGroupWhileTheTransportClosesIsClosedToo() throws Exception {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build();
        Field field = InMemoryTransport.class.getDeclaredField("structure");
        field.setAccessible(true);
        Object structure = field.get(transport); // held here, it stops the subscribe just past its closed check
        CompletableFuture<Subscription> subscribed = new CompletableFuture<>();
        CompletableFuture<Void> closed = new CompletableFuture<>();
        Thread subscriber = new Thread(() -> {
            try {
                subscribed.complete(transport.subscribe("g", TopicPattern.of("items"), StartPosition.LATEST, record -> { }));
            } catch (Throwable e) {
                subscribed.completeExceptionally(e);
            }
        });
        Thread closer = new Thread(() -> {
            transport.close();
            closed.complete(null);
        });
        synchronized (structure) {
            subscriber.start();
            await().atMost(Duration.ofSeconds(30)).until(() -> subscriber.getState() == Thread.State.BLOCKED);
            closer.start();
            await().atMost(Duration.ofSeconds(30)).until(() -> closed.isDone() || closer.getState() == Thread.State.BLOCKED);
        }
        closed.get();
        try {
            Subscription subscription = subscribed.get();
            assertFalse(subscription.isActive(), "close() missed the member joining its group: it stays open");
        } catch (ExecutionException e) {
            assertInstanceOf(ConfigurationException.class, e.getCause()); // refused: the transport is closed
        }
        subscriber.join();
        closer.join();
    }
}
