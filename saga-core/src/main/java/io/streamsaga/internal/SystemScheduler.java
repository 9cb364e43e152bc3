package io.streamsaga.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * {@link Scheduler} on a real clock with one lazily started daemon thread. What a task throws is logged at ERROR (the
 * executor would keep it in a future nobody reads); the other tasks still run.
 */
public final class SystemScheduler implements Scheduler {
    private static final Logger log = LoggerFactory.getLogger(SystemScheduler.class);
    private final Clock clock;
    private volatile ScheduledExecutorService executor;

    public SystemScheduler(Clock clock) {
        this.clock = clock;
    }

    @Override
    public Clock clock() {
        return clock;
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        // The executor keeps what a task throws in a future nobody reads: logged here, or a bug in a timer vanishes.
        Runnable logged = () -> {
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
        if (!delay.isZero() && !delay.isNegative()) {
            TimeUnit.NANOSECONDS.sleep(nanos(delay));
        }
    }

    /** The delay in nanoseconds, negative as zero and longer than {@code MAX_DURATION} as that (toNanos would throw). */
    private static long nanos(Duration delay) {
        return delay.compareTo(ConfigurationException.MAX_DURATION) > 0 ? Long.MAX_VALUE : Math.max(0, delay.toNanos());
    }

    private ScheduledExecutorService executor() {
        ScheduledExecutorService current = executor;
        if (current == null) {
            synchronized (this) {
                current = executor;
                if (current == null) {
                    ScheduledThreadPoolExecutor created = new ScheduledThreadPoolExecutor(1, runnable -> {
                        Thread thread = new Thread(runnable, "streamsaga-scheduler");
                        thread.setDaemon(true);
                        return thread;
                    });
                    created.setRemoveOnCancelPolicy(true);
                    executor = created;
                    current = created;
                }
            }
        }
        return current;
    }

    @Override
    public void close() {
        ScheduledExecutorService current = executor;
        if (current != null) {
            current.shutdownNow();
        }
    }
}
