package io.streamsaga.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The tasks one component schedules on a scheduler it may share with others (see {@link Scheduler#scoped}). Its
 * {@link #close()} cancels those not started, waits for those running on other threads, and from then on runs none;
 * the shared scheduler goes on. A task of this scope that schedules again (a repeating timer's reschedule) after the
 * shared scheduler was closed is refused there: that is logged once, as one WARN line naming the owner (closed after
 * the scheduler it runs on, as a component closed after its bus), and the task is dropped, not thrown back into the
 * scheduler, which would log it as a bug in a timer. Thread-safe.
 */
public final class ScopedScheduler implements Scheduler {
    private static final Logger log = LoggerFactory.getLogger(ScopedScheduler.class);

    private final Scheduler shared;
    private final String owner;
    /** The shared scheduler's, read once here: an application's scheduler says it, and may say it wrong. */
    private final Duration closeWait;
    private final Set<Task> queued = ConcurrentHashMap.newKeySet();
    /** The threads running a task of this scope now, with how many each (a virtual scheduler nests them); under itself. */
    private final Map<Thread, Integer> running = new HashMap<>();
    private volatile boolean closed;
    private final AtomicBoolean refusalLogged = new AtomicBoolean();

    public ScopedScheduler(Scheduler shared, String owner) {
        this.shared = java.util.Objects.requireNonNull(shared, "shared");
        this.owner = java.util.Objects.requireNonNull(owner, "owner");
        // Refused or capped here, as SystemScheduler takes its own: at close() a null would throw, and one over
        // MAX_DURATION (ChronoUnit.FOREVER) would overflow toNanos(), either before anything was closed.
        this.closeWait = ConfigurationException.requireAge(shared.closeWait(), owner + ": its scheduler's closeWait()");
    }

    @Override
    public Clock clock() {
        return shared.clock();
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        // Refused here, also when closed: the shared scheduler is the application's and may take a null one.
        SchedulerArguments.requireDelay(delay, "schedule(Duration, Runnable)");
        SchedulerArguments.requireTask(task);
        if (closed) {
            return () -> { };
        }
        Task scheduled = new Task(task);
        queued.add(scheduled);
        try {
            scheduled.handle = shared.schedule(delay, scheduled);
        } catch (RejectedExecutionException e) { // the shared scheduler closed: nothing to keep for close()
            queued.remove(scheduled);
            if (!runsHere()) {
                throw e; // the caller is told (a constructor arming its first timer fails)
            }
            // A reschedule from a task of this scope: nobody but the scheduler would see the exception.
            if (refusalLogged.compareAndSet(false, true)) {
                log.warn("{}: its scheduler was closed before it, so its timers stop (close the components built on a"
                        + " bus before the bus)", owner);
            }
            return () -> { };
        } catch (RuntimeException | Error e) {
            queued.remove(scheduled);
            throw e;
        }
        if (closed) { // close() ran meanwhile and may not have seen it
            scheduled.cancel();
        }
        return scheduled;
    }

    @Override
    public void sleep(Duration delay) throws InterruptedException {
        shared.sleep(SchedulerArguments.requireDelay(delay, "sleep(Duration)"));
    }

    /**
     * Cancels the tasks not started, then waits, up to the shared scheduler's {@link #closeWait()} (10 s unless it
     * says otherwise), for those running on other threads (not for one that
     * calls this, from its own task); a task that starts later runs nothing. The shared scheduler is left running.
     * Called on an interrupted thread, it waits all the same and returns with the thread's interrupt flag set.
     */
    @Override
    public void close() {
        closeBy(System.nanoTime() + closeWait().toNanos());
    }

    /** The shared scheduler's, as it was when this scope was made: the tasks of this scope run on it. */
    @Override
    public Duration closeWait() {
        return closeWait;
    }

    /**
     * {@link #close()}, waiting until {@code deadline} (a {@link System#nanoTime()}) rather than for
     * {@link #closeWait()}: a component that closes a scheduler of its own after this one gives both one deadline
     * ({@link SystemScheduler#closeBy}), so that a task stuck longer is waited for once, not twice.
     */
    public void closeBy(long deadline) {
        synchronized (running) {
            closed = true;
        }
        for (Task task : List.copyOf(queued)) {
            task.cancel();
        }
        Thread self = Thread.currentThread();
        // An interrupted caller waits all the same, bounded, and gets its interrupt back, as ExecutorService.close()
        // (Java 19+) does: the promise that no task of this scope runs once this has returned holds.
        boolean interrupted = false;
        synchronized (running) {
            while (running.size() > (running.containsKey(self) ? 1 : 0)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    log.warn("{}: close() stopped waiting after {} for a scheduled task still running on {}", owner,
                            closeWait(), running.keySet());
                    break;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(running, left);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether the calling thread runs a task of this scope now. */
    private boolean runsHere() {
        synchronized (running) {
            return running.containsKey(Thread.currentThread());
        }
    }

    private boolean enter() {
        synchronized (running) {
            if (closed) {
                return false;
            }
            running.merge(Thread.currentThread(), 1, Integer::sum);
            return true;
        }
    }

    private void exit() {
        synchronized (running) {
            running.computeIfPresent(Thread.currentThread(), (thread, count) -> count == 1 ? null : count - 1);
            running.notifyAll();
        }
    }

    /** One task of this scope: forgotten once it starts or is cancelled. */
    private final class Task implements Runnable, Cancellable {
        private final Runnable task;
        private volatile Cancellable handle;

        Task(Runnable task) {
            this.task = task;
        }

        @Override
        public void run() {
            queued.remove(this);
            if (!enter()) {
                return;
            }
            try {
                task.run();
            } finally {
                exit();
            }
        }

        @Override
        public void cancel() {
            queued.remove(this);
            Cancellable scheduled = handle;
            if (scheduled != null) {
                scheduled.cancel();
            }
        }
    }
}
