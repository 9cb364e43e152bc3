package io.streamsaga.time;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code Scheduler.system()}'s close() ({@code shutdownNow}) interrupted the task it was running and returned at once:
 * a component closing the scheduler it owns (an orchestrator or a claim-check interceptor built without one) had
 * its timer work cut short by an interrupt (a JDBC call on H2 closes its file on one) or still running after close()
 * returned, where {@link Scheduler#scoped} waits for it. close() now drops the queued tasks and waits, bounded, for the
 * running one, not interrupting it.
 */
class SystemSchedulerCloseTest {

    @Test
    void closeWaitsForTheRunningTaskWithoutInterruptingItAndRunsNoQueuedTask() throws Exception {
        Scheduler scheduler = Scheduler.system();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch finished = new CountDownLatch(1);
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicReference<Thread> closer = new AtomicReference<>();
        AtomicBoolean finishedAfterCloseReturned = new AtomicBoolean();
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean queuedRan = new AtomicBoolean();
        scheduler.schedule(Duration.ZERO, () -> {
            running.countDown();
            // Finish only once close() is waiting for this task, or has returned without waiting.
            while (!closeReturned.get() && !waiting(closer.get()) && !Thread.currentThread().isInterrupted()) {
                Thread.onSpinWait();
            }
            interrupted.set(Thread.currentThread().isInterrupted());
            finishedAfterCloseReturned.set(closeReturned.get());
            finished.countDown();
        });
        scheduler.schedule(Duration.ZERO, () -> queuedRan.set(true)); // due, queued behind the running task
        scheduler.schedule(Duration.ofMillis(1), () -> queuedRan.set(true));
        assertTrue(running.await(30, TimeUnit.SECONDS), "the first task runs");

        Thread closing = new Thread(() -> {
            scheduler.close();
            closeReturned.set(true);
        }, "closer");
        closer.set(closing);
        closing.start();
        closing.join();
        assertTrue(finished.await(30, TimeUnit.SECONDS), "the running task finished");

        assertFalse(interrupted.get(), "the running task was not interrupted");
        assertFalse(finishedAfterCloseReturned.get(), "close() returned only once the running task had finished");
        assertFalse(queuedRan.get(), "no queued task ran after close()");
    }

    @Test
    void closeEndsWithTheRunningTaskAlsoWhenItDropsATaskDueBehindIt() throws Exception {
        // close() emptied the queue after shutdown(): a worker that had just finished its task and seen the due task
        // still queued then waited in the emptied queue for a task that never came, and close() waited its 10 s for
        // a thread running nothing, logged a warning and interrupted it. A race of microseconds, met within a few
        // hundred closes: none of these closes may give up waiting, as each running task ends at once.
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            for (int i = 0; i < 2000 && !captured.toString(StandardCharsets.UTF_8).contains("stopped waiting"); i++) {
                Scheduler scheduler = Scheduler.system();
                CountDownLatch running = new CountDownLatch(1);
                CountDownLatch finish = new CountDownLatch(1);
                scheduler.schedule(Duration.ZERO, () -> {
                    running.countDown();
                    awaitUninterruptibly(finish);
                });
                scheduler.schedule(Duration.ZERO, () -> { }); // due, queued behind the running task
                assertTrue(running.await(30, TimeUnit.SECONDS), "the first task runs");
                finish.countDown(); // the task ends while close() drops the one due behind it
                for (int spin = i % 200; spin > 0; spin--) { // meets the worker at various points after the task
                    Thread.onSpinWait();
                }
                scheduler.close();
            }
        } finally {
            System.setErr(original);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        assertFalse(log.contains("stopped waiting"), log);
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void aTaskClosingItsOwnSchedulerDoesNotWaitForItself() throws Exception {
        Scheduler scheduler = Scheduler.system();
        CountDownLatch done = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        scheduler.schedule(Duration.ZERO, () -> {
            scheduler.close(); // as a component closing from its own timer (a relay whose transport closed)
            interrupted.set(Thread.currentThread().isInterrupted());
            done.countDown();
        });
        assertTrue(done.await(30, TimeUnit.SECONDS));
        assertFalse(interrupted.get());
    }

    private static boolean waiting(Thread thread) {
        if (thread == null) {
            return false;
        }
        Thread.State state = thread.getState();
        return state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING;
    }
}
