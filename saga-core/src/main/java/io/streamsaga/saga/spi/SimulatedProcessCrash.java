package io.streamsaga.saga.spi;

/**
 * An {@link Error} a test's {@link SagaStore} throws to stand for the process dying at that point (the test
 * kit's {@code CrashingSagaStore} throws a subclass). The engine handles it like any Error while it drives a
 * saga (the run stops as if the process died there, the Error propagates, {@code recover()} resumes the saga;
 * also when a {@code SagaListener} throws it, where other Errors are logged and ignored), but logs it at DEBUG
 * rather than ERROR: the test asked for it. A periodic task of the library that it reaches
 * ({@link io.streamsaga.time.Scheduler#repeat}: an orchestrator's recovery sweep or purge reading the store after its
 * crash, saga-micrometer's count of sagas by status) stops, logged at DEBUG too, as a dead process's timers do, rather
 * than throwing it into whatever runs the scheduler. Never throw it for a real failure, which would then not be logged
 * at ERROR. No stack trace is recorded.
 */
public abstract class SimulatedProcessCrash extends Error {
    private static final long serialVersionUID = 1L;

    protected SimulatedProcessCrash(String message) {
        super(message, null, false, false);
    }
}
