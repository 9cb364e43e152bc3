package io.streamsaga.time;

import io.streamsaga.internal.SystemScheduler;

import java.time.Clock;
import java.time.Duration;

/**
 * The library's only source of time: the current instant, delayed tasks (timeouts, aggregation deadlines,
 * stalled-flow checks) and blocking backoff between retries. Injected everywhere so that tests run on a
 * virtual clock ({@code VirtualScheduler} in saga-inmemory) and never sleep. Implementations are
 * thread-safe.
 */
public interface Scheduler extends AutoCloseable {

    /**
     * How long a close() of the library waits for work still running on another thread before it stops waiting
     * (logged at WARN): 10 s, the {@link #closeWait()} of every scheduler that does not say otherwise. The close() of
     * {@link #system()} and of {@link #scoped} waits so for a running task, an outbox relay's for a poll in progress,
     * an in-memory subscription's for its consumer thread. A component that closes its scoped timers and then the
     * {@code system()} scheduler it created (an orchestrator or a claim-check interceptor built without one) waits
     * this once in all for a task stuck longer, not once in each close.
     */
    Duration CLOSE_WAIT = Duration.ofSeconds(10);

    /** The wall clock of this scheduler. */
    Clock clock();

    /**
     * How long, in real time, a close() waits for work still running on another thread: that of this scheduler, of a
     * {@link #scoped} scheduler over it, and of the components that run their timers on it (an orchestrator, an outbox
     * relay); {@link #CLOSE_WAIT} by default. A scheduler whose application must shut down sooner, or that tests
     * closes meeting stuck work, may say less, one whose application can wait longer more: zero or positive. It is
     * read once, when a scoped scheduler (and so a component) is made over this one: a null or negative wait is
     * refused there with a {@link io.streamsaga.ConfigurationException}, and one longer than
     * {@link io.streamsaga.ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER}) is taken as that.
     */
    default Duration closeWait() {
        return CLOSE_WAIT;
    }

    /**
     * Runs {@code task} once after {@code delay} (a negative delay as zero: a deadline already past is due now; one
     * longer than {@link io.streamsaga.ConfigurationException#MAX_DURATION} as that); the returned handle cancels it.
     * The library's schedulers ({@link #system()}, {@link #scoped}, saga-inmemory's {@code VirtualScheduler}) refuse a
     * null delay or task at the call with a {@link io.streamsaga.ConfigurationException} naming the argument, not
     * with a NullPointerException from inside, or, for a task, only when it falls due on the scheduler's thread.
     */
    Cancellable schedule(Duration delay, Runnable task);

    /**
     * Blocks the calling thread for {@code delay}, taken as in {@link #schedule} (negative as zero, null refused with a
     * {@link io.streamsaga.ConfigurationException}; a virtual scheduler advances its clock instead).
     */
    void sleep(Duration delay) throws InterruptedException;

    /**
     * Stops the scheduler's threads; pending tasks are dropped. The scheduler of {@link #system()} waits, up to
     * {@link #closeWait()}, for a task running on its thread to finish (not when that task calls it), without
     * interrupting it, as one of {@link #scoped} does, and refuses a task scheduled after it. Called on an interrupted
     * thread, both wait all the same and return with its interrupt flag set (as {@code ExecutorService.close()} does
     * from Java 19).
     */
    @Override
    void close();

    /**
     * A scheduler on the system clock with one daemon thread, created lazily; what a task throws is logged at ERROR.
     * Its {@link #close()} drops the queued tasks and waits, up to {@link #CLOSE_WAIT} (then logs a warning and
     * interrupts it), for the task running on its thread, unless that task calls it: a component closing the scheduler
     * it owns does not cut its own timer work short, and no task runs once close() has returned.
     */
    static Scheduler system() {
        return new SystemScheduler(Clock.systemUTC());
    }

    /**
     * The tasks one component schedules on {@code shared}, which other components may share: the returned
     * scheduler's {@link #close()} cancels those of its tasks not started yet, waits (up to {@code shared}'s
     * {@link #closeWait()}, then logs a warning naming {@code owner}) for those running on other threads to finish
     * (not for the task that calls it, if one does), and from then on runs none; {@code shared} goes on running. The library's components schedule
     * their timers so (an aggregator's deadlines, a flow tracker's checks, the claim-check sweep, an orchestrator's
     * purge, recovery sweep and heartbeat), so that once their {@code close()} has returned they do no more work.
     *
     * @param owner what the component is, for the log ({@code "aggregator 'orders'"})
     */
    static Scheduler scoped(Scheduler shared, String owner) {
        return new io.streamsaga.internal.ScopedScheduler(shared, owner);
    }

    /**
     * Runs a periodic task on {@code scheduler}, the first time after {@code firstDelay} (taken as in
     * {@link #schedule}), then {@code period} after each run ends, so runs never overlap, until the returned handle
     * cancels it: the rule of the library's periodic tasks (an orchestrator's purge, recovery sweep and heartbeat, the
     * claim-check sweep, the JDBC components' purges, saga-micrometer's counts). A run may come in parts: {@code part}
     * returns true when another part of the same run follows, queued at once as a task of its own, so that the
     * scheduler's other timers due meanwhile (a bus's: sagas' timeouts and retries) run between the parts of a long
     * run (a purge of a large backlog, batch by batch), and false when the run is over.
     * <p>
     * A run that throws a RuntimeException is logged at WARN and the next run follows; one that throws another Error
     * is followed by the next run too, the Error thrown on to the scheduler (which logs it). A {@link ThreadDeath} (the
     * thread stopped) is logged at WARN and thrown on, as its Javadoc asks, and a test's
     * {@link io.streamsaga.saga.spi.SimulatedProcessCrash} logged at DEBUG and not thrown, as a dead process's timers
     * do not run: after either the task runs no more. Cancelling drops the part or run queued; a part running on
     * another thread then arms none after it (close the {@link #scoped} scheduler it runs on to wait for that part).
     * Once cancelled, a refusal of the scheduler (a {@link java.util.concurrent.RejectedExecutionException} from one
     * closed) is ignored; before, it is thrown, at this call for the first run.
     *
     * @param name   what runs, for the log, its component first ({@code "claim-check interceptor: its expiry sweep"})
     * @param period positive
     * @throws io.streamsaga.ConfigurationException when an argument is null or the period not positive, naming it and,
     *                                             but for a null name, the task
     */
    static Cancellable repeat(Scheduler scheduler, String name, Duration firstDelay, Duration period,
                              java.util.function.BooleanSupplier part) {
        return io.streamsaga.internal.RepeatingTask.start(scheduler, name, firstDelay, period, part);
    }

    /** A handle to cancel a scheduled task. */
    @FunctionalInterface
    interface Cancellable {
        /**
         * Cancels the task if it has not run yet; harmless otherwise. A task the scheduler already started (its
         * thread took it, and it may be waiting for a lock the caller holds) may still run after cancel returns:
         * implementations need not prevent that, and callers must tolerate it (a task checks, when it runs,
         * whether it is still wanted).
         */
        void cancel();
    }
}
