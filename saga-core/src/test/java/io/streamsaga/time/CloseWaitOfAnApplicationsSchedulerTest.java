package io.streamsaga.time;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.temporal.ChronoUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Scheduler#closeWait()} is the application's to say, but only the system scheduler checked it: a scoped
 * scheduler over one that said more than {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER},
 * "wait as long as it takes") threw an ArithmeticException from its close(), which then closed nothing, and one
 * that said null threw a NullPointerException there. The close wait is now read when the scoped scheduler is made, as
 * the system scheduler takes its own: null or negative refused there with a {@link ConfigurationException} naming the
 * owner, longer than {@code MAX_DURATION} taken as that.
 */
class CloseWaitOfAnApplicationsSchedulerTest {

    @Test
    void aScopedSchedulerOverOneWaitingLongerThanTheLongestDurationClosesWaitingThatLongest() {
        Scheduler shared = closingWithin(ChronoUnit.FOREVER.getDuration());
        try {
            Scheduler scoped = Scheduler.scoped(shared, "a component");

            assertEquals(ConfigurationException.MAX_DURATION, scoped.closeWait());
            scoped.close(); // nothing running: returns at once (it threw an ArithmeticException)
        } finally {
            shared.close();
        }
    }

    @Test
    void aScopedSchedulerIsRefusedOverOneWhoseCloseWaitIsNegativeOrNull() {
        for (Duration closeWait : new Duration[] {Duration.ofSeconds(-1), null}) {
            Scheduler shared = closingWithin(closeWait);
            try {
                ConfigurationException e = assertThrows(ConfigurationException.class,
                        () -> Scheduler.scoped(shared, "a component"));

                assertTrue(e.getMessage().startsWith("a component: its scheduler's closeWait() must be zero or positive,"
                        + " but was " + closeWait), e.getMessage());
            } finally {
                shared.close();
            }
        }
    }

    /** The system scheduler, but whose closes wait {@code closeWait}, as an application's scheduler may say. */
    static Scheduler closingWithin(Duration closeWait) {
        Scheduler system = Scheduler.system();
        return new Scheduler() {
            @Override
            public Clock clock() {
                return system.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                return system.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) throws InterruptedException {
                system.sleep(delay);
            }

            @Override
            public Duration closeWait() {
                return closeWait;
            }

            @Override
            public void close() {
                system.close();
            }
        };
    }
}
