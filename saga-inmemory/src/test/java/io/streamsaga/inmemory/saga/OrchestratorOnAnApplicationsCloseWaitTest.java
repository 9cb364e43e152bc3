package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.temporal.ChronoUnit;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An orchestrator takes the one deadline of its close from its scheduler's {@link Scheduler#closeWait()}, the
 * application's to say: one over {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER}) made its
 * close() throw an ArithmeticException before it stopped anything, and a negative or null one was taken until then.
 * Now a negative or null one is refused when the orchestrator is built, and a longer one is waited as that maximum.
 */
class OrchestratorOnAnApplicationsCloseWaitTest {

    @Test
    void anOrchestratorOnASchedulerWaitingLongerThanTheLongestDurationCloses() {
        Scheduler scheduler = closingWithin(ChronoUnit.FOREVER.getDuration());
        try {
            SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                    .scheduler(scheduler).build();

            orchestrator.close(); // it threw an ArithmeticException
        } finally {
            scheduler.close();
        }
    }

    @Test
    void anOrchestratorIsRefusedOnASchedulerWhoseCloseWaitIsNegativeOrNull() {
        for (Duration closeWait : new Duration[] {Duration.ofMillis(-1), null}) {
            Scheduler scheduler = closingWithin(closeWait);
            try {
                ConfigurationException e = assertThrows(ConfigurationException.class,
                        () -> SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(scheduler).build());

                assertTrue(e.getMessage().contains("closeWait() must be zero or positive, but was " + closeWait),
                        e.getMessage());
            } finally {
                scheduler.close();
            }
        }
    }

    /** The system scheduler, but whose closes wait {@code closeWait}, as an application's scheduler may say. */
    private static Scheduler closingWithin(Duration closeWait) {
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
