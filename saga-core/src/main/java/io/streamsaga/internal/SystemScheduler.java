package io.streamsaga.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * {@link Scheduler} on a real clock with one lazily started daemon thread. What a task throws is logged at ERROR (the
 * executor would keep it in a future nobody reads); the other tasks still run. {@link #close()} drops the queued tasks
 * and waits, bounded, for the running one, as {@link ScopedScheduler#close()} does, rather than interrupting it.
 */
public final class SystemScheduler implements Scheduler {
    private static final Logger log = LoggerFactory.getLogger(SystemScheduler.class);
    private final Clock clock;
    private final Duration closeWait;
    private volatile ScheduledThreadPoolExecutor executor;
    /** The executor's thread, which close() does not wait for when a task of its own calls it. */
    private volatile Thread thread;
    private volatile boolean closed;

    public SystemScheduler(Clock clock) {
        this(clock, CLOSE_WAIT);
    }

    /**
     * A scheduler whose close() waits {@code closeWait} for a running task, and so the closes of the components that
     * own it (a test meeting a stuck task passes a short one); zero or positive, a longer one than
     * {@link ConfigurationException#MAX_DURATION} taken as that.
     */
    public SystemScheduler(Clock clock, Duration closeWait) {
        this.clock = clock;
        this.closeWait = ConfigurationException.requireAge(closeWait, "closeWait");
    }

    @Override
    public Clock clock() {
        return clock;
    }

    @Override
    public Duration closeWait() {
        return closeWait;
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        SchedulerArguments.requireDelay(delay, "schedule(Duration, Runnable)");
        SchedulerArguments.requireTask(task);
        // The executor keeps what a task throws in a future nobody reads: logged here, or a bug in a timer vanishes.
        Runnable logged = () -> {
            if (closed) { // due before close() but still queued behind the task close() waited for: dropped too
                return;
            }
            try {
                task.run();
            } catch (RuntimeException | Error e) {
                log.error("a scheduled task threw; the scheduler goes on with its other tasks: {}", e.toString(), e);
                throw e;
            }
        };
        ScheduledFuture<?> future = executor().schedule(logged, nanos(delay), TimeUnit.NANOSECONDS);
        return () -> future.cancel(false);
    }

    @Override
    public void sleep(Duration delay) throws InterruptedException {
        SchedulerArguments.requireDelay(delay, "sleep(Duration)");
        if (!delay.isZero() && !delay.isNegative()) {
            TimeUnit.NANOSECONDS.sleep(nanos(delay));
        }
    }

    /** The delay in nanoseconds, negative as zero and longer than {@code MAX_DURATION} as that (toNanos would throw). */
    private static long nanos(Duration delay) {
        return delay.compareTo(ConfigurationException.MAX_DURATION) > 0 ? Long.MAX_VALUE : Math.max(0, delay.toNanos());
    }

    private ScheduledExecutorService executor() {
        ScheduledThreadPoolExecutor current = executor;
        if (current == null) {
            synchronized (this) {
                current = executor;
                if (current == null) {
                    if (closed) { // as the executor refuses a task once shut down
                        throw new RejectedExecutionException("the scheduler is closed");
                    }
                    ScheduledThreadPoolExecutor created = new ScheduledThreadPoolExecutor(1, runnable -> {
                        Thread worker = new Thread(runnable, "streamsaga-scheduler");
                        worker.setDaemon(true);
                        thread = worker;
                        return worker;
                    });
                    created.setRemoveOnCancelPolicy(true);
                    created.setExecuteExistingDelayedTasksAfterShutdownPolicy(false); // close() drops them
                    created.setContinueExistingPeriodicTasksAfterShutdownPolicy(false);
                    executor = created;
                    current = created;
                }
            }
        }
        return current;
    }

    /**
     * Drops the tasks not started and waits, up to {@link #closeWait()} (10 s unless given), for the one running (not
     * when that task calls this), without interrupting it: a timer of a component is not cut short in the middle of
     * its work (an interrupted JDBC call, a half-done purge), and once this has returned no task runs. A task still
     * running after that is logged at WARN and interrupted, so the thread ends. Called on an interrupted thread, it waits all the same and returns with the
     * thread's interrupt flag set.
     */
    @Override
    public void close() {
        closeBy(System.nanoTime() + closeWait.toNanos());
    }

    /**
     * {@link #close()}, waiting for the running task until {@code deadline} (a {@link System#nanoTime()}) rather than
     * for {@link #closeWait()}: a component that owns this scheduler and first closes a scoped one over it gives both
     * closes one deadline, so that a task stuck longer is waited for once, not twice.
     */
    public void closeBy(long deadline) {
        ScheduledThreadPoolExecutor current;
        synchronized (this) {
            closed = true; // also keeps executor() from starting a thread after this one
            current = executor;
        }
        if (current == null) {
            return;
        }
        // shutdown() drops the delayed tasks and keeps those already due, which the worker runs as no-ops ('closed')
        // before it ends. The queue is not emptied behind the executor's back: a worker that had just seen a due task
        // queued would wait in the emptied queue for a task that never comes, a race between two lines of the JDK's
        // worker that no test can pin, and close() would wait its bound for a thread running nothing.
        current.shutdown();
        if (Thread.currentThread() == thread) {
            return; // a task closing its own scheduler: it finishes after this returns, the thread then ends
        }
        // An interrupted caller waits all the same, bounded, and gets its interrupt back, as ExecutorService.close()
        // (Java 19+) does: the promises (no task runs after this returns, none is interrupted before the bound) hold.
        boolean interrupted = false;
        while (true) {
            try {
                if (!current.awaitTermination(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
                    log.warn("scheduler close() stopped waiting after {} for a task still running on {}; interrupting"
                            + " it", closeWait, thread);
                    current.shutdownNow();
                }
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
