package io.streamsaga.time;

import io.streamsaga.ConfigurationException;
import io.streamsaga.internal.SystemScheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DESIGN.md: bad input gets a clear, typed error at the API. A null delay given to the system scheduler failed as a
 * bare NullPointerException from inside its nanosecond conversion, and a null task was accepted and failed later as a
 * NullPointerException on the scheduler's thread (logged as a bug in a timer, the caller never told); a scoped
 * scheduler accepted a null task too. Both are now refused where they are given with a {@link ConfigurationException}
 * naming the argument, as {@link Scheduler#schedule} says; a negative delay is still taken as zero.
 */
class NullDelayOrTaskTest {

    @Test
    void theSystemSchedulerRefusesANullDelayOrTaskNamingItAndStillTakesANegativeDelayAsZero() throws Exception {
        try (Scheduler scheduler = new SystemScheduler(Clock.systemUTC())) {
            refusesNullArguments(scheduler);

            CountDownLatch ran = new CountDownLatch(1);
            scheduler.schedule(Duration.ofSeconds(-1), ran::countDown);
            assertTrue(ran.await(30, TimeUnit.SECONDS), "a negative delay is taken as zero");
            scheduler.sleep(Duration.ofSeconds(-1)); // returns at once
        }
    }

    @Test
    void aScopedSchedulerRefusesANullDelayOrTaskNamingItAlsoOverASchedulerThatWouldTakeThem() {
        try (Scheduler system = Scheduler.system(); Scheduler scoped = Scheduler.scoped(system, "a component")) {
            refusesNullArguments(scoped);
        }
    }

    static void refusesNullArguments(Scheduler scheduler) {
        ConfigurationException delay = assertThrows(ConfigurationException.class,
                () -> scheduler.schedule(null, () -> { }));
        assertEquals("schedule(Duration, Runnable): the delay must not be null (a negative one is taken as zero)",
                delay.getMessage());
        ConfigurationException task = assertThrows(ConfigurationException.class,
                () -> scheduler.schedule(Duration.ZERO, null));
        assertEquals("schedule(Duration, Runnable): the task must not be null", task.getMessage());
        ConfigurationException sleep = assertThrows(ConfigurationException.class, () -> scheduler.sleep(null));
        assertEquals("sleep(Duration): the delay must not be null (a negative one is taken as zero)",
                sleep.getMessage());
    }
}
