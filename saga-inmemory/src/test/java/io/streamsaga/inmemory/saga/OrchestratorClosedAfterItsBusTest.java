package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.saga.SagaOrchestrator;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bus built without a scheduler closes its own {@code Scheduler.system()} at the end of its close(): an
 * orchestrator built on it and closed after it has the reschedule of a repeating task running then refused. That was
 * logged by the scheduler at ERROR with a stack trace, as a bug in a timer; it is one WARN line naming the component
 * and saying that its scheduler was closed before it. Reads slf4j-simple's output (System.err).
 */
class OrchestratorClosedAfterItsBusTest {

    @Test
    void aRepeatingTaskWhoseRescheduleTheClosedBusSchedulerRefusesIsOneWarningNamingTheOrchestrator() throws Exception {
        CountDownLatch purging = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ForwardingSagaStore store = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public int deleteFinishedBefore(Instant cutoff) {
                purging.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return delegate.deleteFinishedBefore(cutoff);
            }
        };
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try (InMemoryTransport transport = InMemoryTransport.builder().build()) {
            EventBus bus = EventBus.builder(transport).build(); // owns its scheduler
            SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus)
                    .purgeEvery(Duration.ofMillis(1)).build();
            assertTrue(purging.await(30, TimeUnit.SECONDS), "the purge runs");

            Thread closingBus = new Thread(bus::close, "bus closer");
            closingBus.start();
            // The bus's scheduler is shut down (it refuses a task) while it waits for the purge in progress.
            await().until(() -> refuses(bus));
            release.countDown();
            closingBus.join();
            orchestrator.close();
        } finally {
            System.setErr(original);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        assertFalse(log.contains("a scheduled task threw"), log);
        assertFalse(log.contains("\tat "), "no stack trace: " + log);
        String warning = "WARN io.streamsaga.internal.ScopedScheduler - saga orchestrator: its scheduler was closed"
                + " before it";
        assertEquals(1, log.split(java.util.regex.Pattern.quote(warning), -1).length - 1, log);
        assertTrue(log.contains("close the components built on a bus before the bus"), log);
    }

    private static boolean refuses(EventBus bus) {
        try {
            bus.scheduler().schedule(Duration.ZERO, () -> { }).cancel();
            return false;
        } catch (RejectedExecutionException refused) {
            return true;
        }
    }
}
