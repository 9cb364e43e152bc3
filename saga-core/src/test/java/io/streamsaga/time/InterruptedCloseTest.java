package io.streamsaga.time;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A close() called on an interrupted thread (an application shutting down from a thread it interrupted, a pool's task
 * cancelled) did not wait: {@code Scheduler.system()}'s close saw the interrupt in its wait at once and interrupted
 * the running task it promises not to interrupt, and a scoped scheduler's close returned while its task still ran. Now
 * both wait, bounded as always, and return with the caller's interrupt flag set again, as the JDK's
 * {@code ExecutorService.close()} (Java 19+) keeps waiting and restores it.
 */
class InterruptedCloseTest {

    @Test
    void theSystemSchedulersCloseOnAnInterruptedThreadWaitsForTheRunningTaskAndKeepsTheInterrupt() throws Exception {
        Scheduler scheduler = Scheduler.system();
        try {
            closeOnAnInterruptedThreadWhileATaskRuns(scheduler);
        } finally {
            scheduler.close();
        }
    }

    @Test
    void aScopedSchedulersCloseOnAnInterruptedThreadWaitsForTheRunningTaskAndKeepsTheInterrupt() throws Exception {
        Scheduler shared = Scheduler.system();
        try {
            closeOnAnInterruptedThreadWhileATaskRuns(Scheduler.scoped(shared, "test"));
        } finally {
            shared.close();
        }
    }

    /** Runs a task on {@code scheduler} and closes it from an interrupted thread while the task runs. */
    private static void closeOnAnInterruptedThreadWhileATaskRuns(Scheduler scheduler)
            throws InterruptedException {
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch finished = new CountDownLatch(1);
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicReference<Thread> closer = new AtomicReference<>();
        AtomicBoolean taskInterrupted = new AtomicBoolean();
        AtomicBoolean finishedAfterCloseReturned = new AtomicBoolean();
        AtomicBoolean closerStillInterrupted = new AtomicBoolean();
        scheduler.schedule(Duration.ZERO, () -> {
            running.countDown();
            // Finish only once close() is waiting for this task, or has returned without waiting.
            while (!closeReturned.get() && !waiting(closer.get()) && !Thread.currentThread().isInterrupted()) {
                Thread.onSpinWait();
            }
            taskInterrupted.set(Thread.currentThread().isInterrupted());
            finishedAfterCloseReturned.set(closeReturned.get());
            finished.countDown();
        });
        assertTrue(running.await(30, TimeUnit.SECONDS), "the task runs");

        Thread closing = new Thread(() -> {
            Thread.currentThread().interrupt();
            scheduler.close();
            closerStillInterrupted.set(Thread.currentThread().isInterrupted());
            closeReturned.set(true);
        }, "interrupted closer");
        closer.set(closing);
        closing.start();
        closing.join();
        assertTrue(finished.await(30, TimeUnit.SECONDS), "the running task finished");

        assertFalse(taskInterrupted.get(), "the running task was not interrupted");
        assertFalse(finishedAfterCloseReturned.get(), "close() returned only once the running task had finished");
        assertTrue(closerStillInterrupted.get(), "the closing thread's interrupt was kept");
    }

    private static boolean waiting(Thread thread) {
        if (thread == null) {
            return false;
        }
        Thread.State state = thread.getState();
        return state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING;
    }
}
