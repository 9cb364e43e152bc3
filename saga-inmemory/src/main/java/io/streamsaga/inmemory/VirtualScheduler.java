package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.time.Scheduler;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.TreeSet;

/**
 * A {@link Scheduler} on a virtual clock for tests: time moves only when the test calls {@link #advance},
 * {@link #advanceTo} or {@link #runNext} (which moves the clock to the deadline of the one task it runs), or when
 * code under test calls {@link #sleep}, which advances the clock instead of blocking; it never moves backwards
 * ({@link #runDueTasks} runs what is due without moving it). Due tasks run on the thread that advances time, in
 * deadline order (in scheduling order at one deadline), with the clock set to each task's deadline.
 * Thread-safe: any thread may schedule, cancel and read the clock. Advance time from one thread at a time
 * (the test's): two threads advancing at once each run the tasks they take, in parallel, and a task may then
 * see the clock already moved past its deadline by the other.
 */
public final class VirtualScheduler implements Scheduler {
    private final Object lock = new Object();
    /**
     * Pending tasks in due order; a sorted set rather than a priority queue, whose remove scans it: cancelling each of
     * n pending timers (a component closing) was quadratic. Tasks are distinct by their sequence number.
     */
    private final TreeSet<Task> tasks = new TreeSet<>();
    private final VirtualClock clock;
    private long sequence;

    /** A virtual scheduler starting at 2026-01-01T00:00:00Z. */
    public VirtualScheduler() {
        this(Instant.parse("2026-01-01T00:00:00Z"));
    }

    public VirtualScheduler(Instant start) {
        this.clock = new VirtualClock(start);
    }

    @Override
    public Clock clock() {
        return clock;
    }

    /** The current virtual instant. */
    public Instant now() {
        return clock.instant();
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        Duration bounded = bounded(delay, "schedule(Duration, Runnable)");
        // Refused here: a null task would throw only when time reaches it, in whatever the test does then.
        ConfigurationException.require(task != null, "%s: the task must not be null", "schedule(Duration, Runnable)");
        synchronized (lock) {
            Task scheduled = new Task(clock.instant().plus(bounded), sequence++, task);
            tasks.add(scheduled);
            return () -> {
                synchronized (lock) {
                    tasks.remove(scheduled);
                }
            };
        }
    }

    /**
     * Advances the clock instead of blocking, running the tasks that fall due meanwhile; {@code delay} is taken as
     * {@link Scheduler#sleep} takes it (negative as zero): code under test may compute a delay already past.
     */
    @Override
    public void sleep(Duration delay) {
        advanceTo(after(delay, "sleep(Duration)"));
    }

    /**
     * Moves time forward by {@code delay}, running every task due up to the new instant; one longer than
     * {@link ConfigurationException#MAX_DURATION} is taken as that.
     *
     * @throws ConfigurationException when {@code delay} is null or negative (a test's mistake: the clock never moves
     *                                backwards, and taking it as zero would let the test read a clock that did not
     *                                move as one it moved), before anything runs
     */
    public void advance(Duration delay) {
        advanceTo(after(requireAdvance(delay)));
    }

    /** Returns {@code delay} for {@link #advance}; throws when it is null or negative (the test kit's run checks so too). */
    private static Duration requireAdvance(Duration delay) {
        ConfigurationException.require(delay != null && !delay.isNegative(), "advance(Duration) cannot move the virtual"
                + " clock backwards: its duration must be zero or positive, but was %s", delay);
        return delay;
    }

    /**
     * The virtual instant {@code delay} from now, the delay taken as {@link Scheduler#schedule} takes it (negative as
     * zero, longer than {@link ConfigurationException#MAX_DURATION} as that): when a task scheduled now falls due.
     *
     * @throws ConfigurationException when {@code delay} is null
     */
    public Instant after(Duration delay) {
        return after(delay, "after(Duration)");
    }

    private Instant after(Duration delay, String call) {
        Duration bounded = bounded(delay, call);
        synchronized (lock) {
            return clock.instant().plus(bounded);
        }
    }

    /** {@code delay} as {@link Scheduler#schedule} takes it; refused when null, naming it as an argument of {@code call}. */
    private static Duration bounded(Duration delay, String call) {
        ConfigurationException.require(delay != null, "%s: the delay must not be null (a negative one is taken as zero)",
                call);
        if (delay.isNegative()) {
            return Duration.ZERO;
        }
        return delay.compareTo(ConfigurationException.MAX_DURATION) > 0 ? ConfigurationException.MAX_DURATION : delay;
    }

    /**
     * Moves time forward to {@code target} (never backwards), running every task due up to it.
     *
     * @throws ConfigurationException when {@code target} is null
     */
    public void advanceTo(Instant target) {
        if (target == null) {
            throw new ConfigurationException("advanceTo(Instant): the target must not be null");
        }
        Task next;
        while ((next = take(target, true)) != null) {
            next.task.run();
        }
    }

    /**
     * Runs the earliest pending task if it is due at or before {@code notAfter}, the clock moved to its deadline
     * first (never backwards); the clock does not move otherwise. Returns whether a task ran. Lets a test settle
     * what each task started (messages to deliver, work on other threads) before the next one runs, also among
     * tasks due at the same instant.
     *
     * @throws ConfigurationException when {@code notAfter} is null
     */
    public boolean runNext(Instant notAfter) {
        if (notAfter == null) {
            throw new ConfigurationException("runNext(Instant): the limit must not be null");
        }
        Task next = take(notAfter, false);
        if (next == null) {
            return false;
        }
        next.task.run();
        return true;
    }

    /**
     * Removes the earliest task due at or before {@code notAfter} and moves the clock to its deadline; null when
     * there is none, the clock then moved to {@code notAfter} if {@code moveToLimit} (in the same lock, so no task
     * scheduled meanwhile is left behind the clock).
     */
    private Task take(Instant notAfter, boolean moveToLimit) {
        synchronized (lock) {
            Task next = tasks.isEmpty() ? null : tasks.first();
            if (next == null || next.due.isAfter(notAfter)) {
                if (moveToLimit && notAfter.isAfter(clock.instant())) {
                    clock.set(notAfter);
                }
                return null;
            }
            tasks.pollFirst();
            if (next.due.isAfter(clock.instant())) {
                clock.set(next.due);
            }
            return next;
        }
    }

    /** Runs the tasks already due without moving time. */
    public void runDueTasks() {
        advance(Duration.ZERO);
    }

    /** When the earliest pending task is due, if any (lets a test jump straight to the next event). */
    public Optional<Instant> nextDueAt() {
        synchronized (lock) {
            return tasks.isEmpty() ? Optional.empty() : Optional.of(tasks.first().due);
        }
    }

    /** How many tasks wait to run. */
    public int pendingTasks() {
        synchronized (lock) {
            return tasks.size();
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            tasks.clear();
        }
    }

    private record Task(Instant due, long sequence, Runnable task) implements Comparable<Task> {
        @Override
        public int compareTo(Task other) {
            int byDue = due.compareTo(other.due);
            return byDue != 0 ? byDue : Long.compare(sequence, other.sequence);
        }
    }

    private static final class VirtualClock extends Clock {
        private volatile Instant now;

        VirtualClock(Instant start) {
            this.now = start;
        }

        void set(Instant instant) {
            now = instant;
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            VirtualClock source = this;
            // A view in another zone that still follows this clock (Clock.fixed would freeze it).
            return new Clock() {
                @Override
                public ZoneId getZone() {
                    return zone;
                }

                @Override
                public Clock withZone(ZoneId other) {
                    return source.withZone(other);
                }

                @Override
                public Instant instant() {
                    return source.instant();
                }
            };
        }

        @Override
        public Instant instant() {
            return now;
        }
    }
}
