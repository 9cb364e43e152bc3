package io.streamsaga.time;

import io.streamsaga.CapturedLog;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    void closeEndsWithTheRunningTaskAlsoWhenItDropsATaskDueBehindIt() throws Throwable {
        // close() emptied the queue after shutdown(), behind the executor's back: a worker that had just finished its
        // task and seen the due task still queued then waited in the emptied queue for a task that never came, and
        // close() waited its 10 s for a thread running nothing, logged a warning and interrupted it. That race lay
        // between two lines of the JDK's worker (its check of the queue and its take), which no latch reaches, and a
        // test could only meet it by chance; close() now leaves the queue to shutdown(), so the worker runs the due
        // tasks as no-ops and ends. Here the running task ends while close() waits for it, with tasks due behind it.
        Scheduler scheduler = Scheduler.system();
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicInteger dueRan = new AtomicInteger();
        scheduler.schedule(Duration.ZERO, () -> {
            running.countDown();
            awaitUninterruptibly(finish);
            interrupted.set(Thread.currentThread().isInterrupted());
        });
        for (int i = 0; i < 3; i++) {
            scheduler.schedule(Duration.ZERO, dueRan::incrementAndGet); // due, queued behind the running task
        }
        assertTrue(running.await(30, TimeUnit.SECONDS), "the first task runs");

        String log = CapturedLog.ofLogger("io.streamsaga.internal.SystemScheduler", () -> {
            Thread closing = new Thread(scheduler::close, "closer");
            closing.start();
            while (closing.isAlive() && !waiting(closing)) { // close() shut the executor down, waits for the task
                Thread.onSpinWait();
            }
            finish.countDown();
            closing.join();
        });

        assertFalse(log.contains("stopped waiting"), "close() gave up waiting for a thread running nothing: " + log);
        assertFalse(interrupted.get(), "the running task was not interrupted");
        assertEquals(0, dueRan.get(), "no task due behind the running one ran");
    }

    @Test
    void closeEndsAtOnceWhenTheThreadWaitsForATaskNotDueYetAfterRunningThoseDue() throws Throwable {
        // The other side of the same close(): the task ended before it, and the thread, done with the tasks due,
        // waits for one not due yet; close() drops that one and the thread ends, without close() waiting its bound.
        Scheduler scheduler = Scheduler.system();
        AtomicReference<Thread> worker = new AtomicReference<>();
        CountDownLatch dueRan = new CountDownLatch(2);
        AtomicBoolean laterRan = new AtomicBoolean();
        scheduler.schedule(Duration.ZERO, () -> {
            worker.set(Thread.currentThread());
            dueRan.countDown();
        });
        scheduler.schedule(Duration.ZERO, dueRan::countDown);
        scheduler.schedule(Duration.ofHours(1), () -> laterRan.set(true));
        assertTrue(dueRan.await(30, TimeUnit.SECONDS), "the tasks due ran");
        Thread.State state;
        while ((state = worker.get().getState()) != Thread.State.TIMED_WAITING && state != Thread.State.TERMINATED) {
            // until the thread waits for the task an hour ahead
            Thread.onSpinWait();
        }

        String log = CapturedLog.ofLogger("io.streamsaga.internal.SystemScheduler", scheduler::close);

        assertFalse(log.contains("stopped waiting"), "close() gave up waiting for a thread running nothing: " + log);
        assertFalse(laterRan.get(), "the task not due yet was dropped");
        worker.get().join(); // the thread ended
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
