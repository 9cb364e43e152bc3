package io.streamsaga.jdbc.internal;

import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A clean-up of one table repeated every interval on a component's {@link Scheduler#scoped scoped} scheduler, in the
 * shape of an orchestrator's retention purge: each run deletes, in transactions of at most {@link #BATCH} rows, what
 * is older than the cutoff read once at its start, until a batch deletes fewer, each batch a task of its own so that
 * the scheduler's other timers run between them; a failure is logged and counted, and
 * the next interval tries again. Several nodes purging one table at once is harmless: each batch deletes what is
 * still there, and one that loses a race for a row fails and is retried the same way. A run that meets a
 * {@link ThreadDeath} (its thread stopped) or a test's {@code SimulatedProcessCrash} is the last, as for every task
 * of {@link Scheduler#repeat} (docs/architecture.md, "A periodic task whose thread is stopped"). The component closes
 * its scope after {@link #stop()}: the scope waits for a batch in progress, after which none starts once stopped.
 * Thread-safe.
 */
public final class PeriodicPurge {
    private static final Logger log = LoggerFactory.getLogger(PeriodicPurge.class);
    /** Rows deleted per transaction, as the saga store's and the payload store's clean-ups. */
    public static final int BATCH = 500;

    /** One bounded batch: deletes at most {@code maxRows} rows outdated at {@code now}, returns how many. */
    @FunctionalInterface
    public interface Batch {
        int delete(Instant now, int maxRows);
    }

    private final Scheduler scope;
    private final Duration interval;
    private final String what;
    private final Batch batch;
    private final MetricsRecorder metrics;
    private final String failureMetric;
    private final Map<String, String> tags;
    private volatile boolean stopped;
    private volatile Scheduler.Cancellable next;
    /** The run in progress, null between runs; used by one batch at a time, under {@link #running}. */
    private Run current;
    /** Held by a batch in progress, for {@link #awaitIdle}. */
    private final ReentrantLock running = new ReentrantLock();

    /**
     * @param scope         the component's scoped scheduler, closed by the component
     * @param what          what is purged, for the log ({@code "outbox relay 'default': sent rows"})
     * @param failureMetric the counter of failed runs in {@code metrics}, tagged {@code tags}
     */
    public PeriodicPurge(Scheduler scope, Duration interval, String what, Batch batch, MetricsRecorder metrics,
                         String failureMetric, Map<String, String> tags) {
        this.scope = Objects.requireNonNull(scope, "scope");
        this.interval = Objects.requireNonNull(interval, "interval");
        this.what = Objects.requireNonNull(what, "what");
        this.batch = Objects.requireNonNull(batch, "batch");
        this.metrics = Objects.requireNonNull(metrics, "metrics");
        this.failureMetric = Objects.requireNonNull(failureMetric, "failureMetric");
        this.tags = Map.copyOf(tags);
    }

    /**
     * Arms the first run, one interval from now, by the rule of the library's periodic tasks
     * ({@link Scheduler#repeat}): after a full batch the next one is a task of its own queued at once rather than run
     * in a loop, so that on a scheduler of one thread shared with other timers (a bus's, whose timers drive sagas'
     * timeouts and retries) those due meanwhile run between batches, not after a purge of a large backlog; after the
     * last one, the next run is armed one interval later.
     */
    public void start() {
        Scheduler.Cancellable task = Scheduler.repeat(scope, what + ": the scheduled purge", interval, interval,
                this::batch);
        next = task;
        if (stopped) { // stop() ran meanwhile and may have read no task to cancel
            task.cancel();
        }
    }

    /** One batch of a run, the first of which reads the cutoff; whether another follows. */
    private boolean batch() {
        boolean more = false;
        running.lock();
        try {
            if (!stopped) {
                if (current == null) { // one cutoff per run: rows outdated meanwhile wait for the next one
                    current = new Run(scope.clock().instant());
                }
                more = deleteOne(current);
            }
        } finally {
            if (!more) { // also after an Error: the next run reads its own cutoff
                current = null;
            }
            running.unlock();
        }
        return more;
    }

    /** Cancels the next run; a run in progress starts no further batch (the component's scope waits for it). */
    public void stop() {
        stopped = true;
        Scheduler.Cancellable timer = next;
        if (timer != null) {
            timer.cancel();
        }
    }

    /**
     * Waits, until {@code deadline} (a {@link System#nanoTime()}), for a batch in progress on another thread after
     * {@link #stop()} (not for one on the calling thread, which may be closing the component from inside it), for a
     * component whose close() cannot close the purge's scope (an outbox relay closed from its own poll); logs a
     * warning when it stops waiting.
     */
    public void awaitIdle(long deadline) {
        if (!running.isHeldByCurrentThread() && !Locks.awaitUnlocked(running, deadline)) {
            log.warn("{}: close() stopped waiting for a purge still deleting rows", what);
        }
    }

    /** A run in progress: its cutoff's time and the rows its batches deleted so far; used by one batch at a time. */
    private static final class Run {
        final Instant now;
        int total;

        Run(Instant now) {
            this.now = now;
        }
    }

    /** Deletes one batch of {@code run}; whether it was full (another follows). A failure ends the run. */
    private boolean deleteOne(Run run) {
        try {
            int deleted = batch.delete(run.now, BATCH);
            run.total += deleted;
            if (deleted == BATCH) {
                return true;
            }
            log.debug("{}: {} row(s) deleted", what, run.total);
        } catch (RuntimeException e) {
            metrics.increment(failureMetric, tags);
            log.warn("{}: purge failed after {} row(s) deleted, retrying at the next interval: {}", what, run.total,
                    e.toString());
        }
        return false;
    }
}
