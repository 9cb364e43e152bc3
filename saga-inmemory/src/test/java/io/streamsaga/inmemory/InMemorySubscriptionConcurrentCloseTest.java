package io.streamsaga.inmemory;

import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An in-memory subscription's close() returns only once no handler of it runs (bounded by Scheduler.CLOSE_WAIT); a
 * second close() called while a first one waited for the handler in progress returned at once, as the subscription
 * was already inactive, with the handler still running. It now waits as the first does.
 */
class InMemorySubscriptionConcurrentCloseTest {

    @Test
    void aSecondCloseWhileTheFirstWaitsAlsoReturnsOnlyOnceTheHandlerInProgressFinished() throws Exception {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build()) {
            CountDownLatch handling = new CountDownLatch(1);
            CountDownLatch finished = new CountDownLatch(1);
            AtomicBoolean secondCloseReturned = new AtomicBoolean();
            AtomicReference<Thread> secondCloser = new AtomicReference<>();
            AtomicBoolean finishedAfterSecondCloseReturned = new AtomicBoolean();
            Subscription subscription = transport.subscribe("g", TopicPattern.of("items"), StartPosition.EARLIEST,
                    record -> {
                        handling.countDown();
                        // Ends only once the second close() waits for this thread or has returned.
                        while (!secondCloseReturned.get() && !waiting(secondCloser.get())) {
                            Thread.onSpinWait();
                        }
                        finishedAfterSecondCloseReturned.set(secondCloseReturned.get());
                        finished.countDown();
                    });
            transport.send(Message.builder("items").key("k").type("text").payload("one").build());
            assertTrue(handling.await(30, TimeUnit.SECONDS), "the handler runs");

            Thread first = new Thread(subscription::close, "first closer");
            first.start();
            await().until(() -> !subscription.isActive() && waiting(first)); // the first close() waits for the handler
            Thread second = new Thread(() -> {
                subscription.close();
                secondCloseReturned.set(true);
            }, "second closer");
            secondCloser.set(second);
            second.start();
            second.join();
            first.join();
            assertTrue(finished.await(30, TimeUnit.SECONDS), "the handler finished");

            assertFalse(finishedAfterSecondCloseReturned.get(),
                    "the second close() returned only once the handler had finished");
        }
    }

    private static boolean waiting(Thread thread) {
        if (thread == null) {
            return false;
        }
        Thread.State state = thread.getState();
        return state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING;
    }
}
