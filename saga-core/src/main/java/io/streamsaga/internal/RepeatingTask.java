package io.streamsaga.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.BooleanSupplier;

/**
 * A task run again and again on a scheduler until cancelled, by the rule of the library's periodic tasks
 * ({@link Scheduler#repeat}): each part a task of its own, the next armed when one ends, so runs never overlap; a
 * ThreadDeath or a test's SimulatedProcessCrash stops it for good. Thread-safe.
 */
public final class RepeatingTask implements Scheduler.Cancellable {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

    private final Scheduler scheduler;
    private final String name;
    private final Duration period;
    private final BooleanSupplier part;
    private volatile boolean cancelled;
    private volatile Scheduler.Cancellable next;

    private RepeatingTask(Scheduler scheduler, String name, Duration period, BooleanSupplier part) {
        this.scheduler = scheduler;
        this.name = name;
        this.period = period;
        this.part = part;
    }

    /** Arms the first run after {@code firstDelay}; see {@link Scheduler#repeat} for the arguments. */
    public static RepeatingTask start(Scheduler scheduler, String name, Duration firstDelay, Duration period,
                                      BooleanSupplier part) {
        ConfigurationException.require(name != null, "repeat: the %s must not be null", "name");
        // the others name the task, as its period's check does: a caller repeats several
        ConfigurationException.require(scheduler != null, "%s: its %s must not be null", name, "scheduler");
        ConfigurationException.require(firstDelay != null, "%s: its %s must not be null", name, "first delay");
        ConfigurationException.require(part != null, "%s: its %s must not be null", name, "part");
        RepeatingTask task = new RepeatingTask(scheduler, name, ConfigurationException.requirePositive(period,
                name + ": its period"), part);
        task.arm(firstDelay);
        return task;
    }

    private void arm(Duration delay) {
        Scheduler.Cancellable timer;
        try {
            timer = scheduler.schedule(delay, this::runPart);
        } catch (RejectedExecutionException e) {
            if (cancelled) { // the component closed the scheduler it owns since: no run is wanted
                return;
            }
            throw e; // at the first run: the caller is told (a component built on a closed scheduler)
        }
        next = timer;
        if (cancelled) { // cancel() ran meanwhile and may have cancelled the previous timer only
            timer.cancel();
        }
    }

    private void runPart() {
        if (cancelled) {
            return;
        }
        boolean more = false;
        boolean dead = false;
        try {
            more = part.getAsBoolean();
        } catch (RuntimeException e) {
            log.warn("{} failed, the next run follows in {}: {}", name, period, e.toString());
        } catch (SimulatedProcessCrash e) {
            // A test's store says this process died: a dead process runs no timers, and thrown on, the Error would
            // fail whatever advanced the test's clock (a recovery sweep reading the store after its crash).
            dead = true;
            log.debug("{} thrown by {}: it stops", e.toString(), name);
        } catch (ThreadDeath e) {
            // The thread was asked to stop (Thread.stop): a run armed after it would ignore the request, as the
            // scheduler's thread outlives it. Thrown on, as its Javadoc asks of whoever catches it.
            dead = true;
            log.warn("{} stops for good, its thread stopped ({}); close and build its component again to run it", name,
                    e.toString());
            throw e;
        } finally {
            // also after another Error, thrown on to the scheduler (which logs it): a bug in one run stops no other
            if (!dead && !cancelled) {
                arm(more ? Duration.ZERO : period);
            }
        }
    }

    /** Cancels the part or run queued, and any after it; a part running on another thread arms none after it. */
    @Override
    public void cancel() {
        cancelled = true;
        Scheduler.Cancellable timer = next;
        if (timer != null) {
            timer.cancel();
        }
    }
}
