package io.streamsaga.inmemory;

import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code Scheduler.system()} runs tasks on an executor, which keeps what a task throws in a future nobody reads: a
 * bug in a timer (an application's, or a library path that lets an exception out) would vanish without a trace. It
 * is logged at ERROR, and the scheduler goes on with its next task. Reads slf4j-simple's output (System.err).
 */
class SystemSchedulerLoggingTest {

    @Test
    void aTaskThatThrowsIsLoggedAtErrorAndTheNextTaskStillRuns() throws Exception {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        CountDownLatch next = new CountDownLatch(1);
        try (Scheduler scheduler = Scheduler.system()) {
            scheduler.schedule(Duration.ZERO, () -> {
                throw new IllegalStateException("a bug in a timer");
            });
            scheduler.schedule(Duration.ZERO, next::countDown); // one thread, in order: runs after the first
            assertTrue(next.await(10, TimeUnit.SECONDS), "the scheduler goes on after a task that threw");
        } finally {
            System.setErr(original);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("ERROR io.streamsaga.internal.SystemScheduler - a scheduled task threw"), log);
        assertTrue(log.contains("java.lang.IllegalStateException: a bug in a timer"), log);
    }
}
