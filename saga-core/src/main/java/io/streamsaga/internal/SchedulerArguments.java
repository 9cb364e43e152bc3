package io.streamsaga.internal;

import io.streamsaga.ConfigurationException;

import java.time.Duration;

/**
 * The refusals of the library's schedulers for a null delay or task ({@link io.streamsaga.time.Scheduler#schedule}):
 * at the call, naming the argument, rather than a NullPointerException from deep inside, or later on the scheduler's
 * thread for a task. (saga-inmemory's VirtualScheduler says the same in its own words: it cannot use this package.)
 */
final class SchedulerArguments {
    private SchedulerArguments() {
    }

    /** Returns {@code delay}; throws when it is null, naming it as an argument of {@code call} ("sleep(Duration)"). */
    static Duration requireDelay(Duration delay, String call) {
        ConfigurationException.require(delay != null, "%s: the delay must not be null (a negative one is taken as zero)",
                call);
        return delay;
    }

    /** Returns {@code task}; throws when it is null. */
    static Runnable requireTask(Runnable task) {
        // The one-argument overload: with none, the varargs form would allocate an empty array at every schedule.
        ConfigurationException.require(task != null, "%s: the task must not be null", "schedule(Duration, Runnable)");
        return task;
    }
}
