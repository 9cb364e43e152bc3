package io.streamsaga.inmemory.saga;

import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** close() stops the threads the orchestrator started for itself. */
class OrchestratorCloseTest {
    record Data(String id) {
    }

    private static Set<Thread> schedulerThreads() {
        Set<Thread> found = new HashSet<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().equals("streamsaga-scheduler") && thread.isAlive()) {
                found.add(thread);
            }
        }
        return found;
    }

    @Test
    void closeStopsTheSchedulerThreadOfAnOrchestratorBuiltWithoutSchedulerOrBus() throws InterruptedException {
        SagaDefinition<Data> definition = SagaDefinition.builder("close-saga", Data.class)
                .step("wait").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // never completes
                .timeout(Duration.ofDays(1))                                          // a timer on the scheduler
                .build();
        Set<Thread> before = schedulerThreads();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        Set<Thread> started = schedulerThreads();
        started.removeAll(before);
        assertTrue(!started.isEmpty(), "the orchestrator's own scheduler started its thread for the timeout");

        orchestrator.close();

        for (Thread thread : List.copyOf(started)) {
            thread.join(Duration.ofSeconds(10).toMillis());
            assertFalse(thread.isAlive(), "thread " + thread.getName() + " left running after close()");
        }
    }
}
