package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine logs an Error that stops a run at ERROR, except the test kit's simulated crash (a
 * SimulatedProcessCrash), which the crash exploration throws hundreds of times on purpose: logged at DEBUG.
 * Reads slf4j-simple's output (System.err, INFO and above) of the test's thread, which runs the sagas (a virtual
 * scheduler).
 */
class SimulatedCrashLoggingTest {
    record Data(String id) {
    }

    @Test
    void aRealErrorIsLoggedAtErrorButASimulatedCrashIsNot() throws Throwable {
        SagaDefinition<Data> failing = SagaDefinition.builder("error-saga", Data.class)
                .step("book").action((d, ctx) -> {
                    throw new AssertionError("bug in the action");
                })
                .build();
        SagaOrchestrator real = SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(new VirtualScheduler())
                .register(failing).build();
        String realLog = CapturedLog.ofThisThread(() -> assertThrows(AssertionError.class,
                () -> real.start(failing, "saga-1", null, new Data("a"))));
        assertTrue(realLog.contains("ERROR io.streamsaga.saga.internal.SagaRun - saga saga-1: java.lang.AssertionError: "
                + "bug in the action thrown"), realLog);
        real.close();

        SagaDefinition<Data> fine = SagaDefinition.builder("fine-saga", Data.class)
                .step("book").action((d, ctx) -> d)
                .build();
        SagaOrchestrator crashing = SagaOrchestrator.builder().store(new CrashingSagaStore(new InMemorySagaStore(), 2))
                .scheduler(new VirtualScheduler()).register(fine).build();
        String crashLog = CapturedLog.ofThisThread(() -> assertThrows(SimulatedCrash.class,
                () -> crashing.start(fine, "saga-2", null, new Data("a"))));
        assertFalse(crashLog.contains("SimulatedCrash"), crashLog);
        crashing.close();
    }
}
