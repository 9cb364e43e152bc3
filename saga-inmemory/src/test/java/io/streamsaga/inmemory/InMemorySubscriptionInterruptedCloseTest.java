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

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An in-memory subscription's close() waits (bounded) for its consumer thread to end, so that no handler of it runs
 * once close() has returned; called on an interrupted thread, it returned at once (its join saw the interrupt) while
 * the handler still ran. It now waits all the same and returns with the interrupt flag set, as the schedulers' close
 * does.
 */
class InMemorySubscriptionInterruptedCloseTest {

    @Test
    void closeOnAnInterruptedThreadWaitsForTheRunningHandlerAndKeepsTheInterrupt() throws Exception {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build()) {
            CountDownLatch handling = new CountDownLatch(1);
            CountDownLatch finished = new CountDownLatch(1);
            AtomicBoolean closeReturned = new AtomicBoolean();
            AtomicReference<Thread> closer = new AtomicReference<>();
            AtomicBoolean finishedAfterCloseReturned = new AtomicBoolean();
            AtomicBoolean closerStillInterrupted = new AtomicBoolean();
            Subscription subscription = transport.subscribe("g", TopicPattern.of("items"), StartPosition.EARLIEST,
                    record -> {
                        handling.countDown();
                        // Ends only once close() waits for this thread or has returned (close() interrupts it: the
                        // handler goes on, as one in the middle of its work may).
                        while (!closeReturned.get() && !waiting(closer.get())) {
                            Thread.onSpinWait();
                        }
                        finishedAfterCloseReturned.set(closeReturned.get());
                        finished.countDown();
                    });
            transport.send(Message.builder("items").key("k").type("text").payload("one").build());
            assertTrue(handling.await(30, TimeUnit.SECONDS), "the handler runs");

            Thread closing = new Thread(() -> {
                Thread.currentThread().interrupt();
                subscription.close();
                closerStillInterrupted.set(Thread.currentThread().isInterrupted());
                closeReturned.set(true);
            }, "interrupted closer");
            closer.set(closing);
            closing.start();
            closing.join();
            assertTrue(finished.await(30, TimeUnit.SECONDS), "the handler finished");

            assertFalse(finishedAfterCloseReturned.get(), "close() returned only once the handler had finished");
            assertTrue(closerStillInterrupted.get(), "the closing thread's interrupt was kept");
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
