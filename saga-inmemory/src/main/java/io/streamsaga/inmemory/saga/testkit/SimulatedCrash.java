package io.streamsaga.inmemory.saga.testkit;

/**
 * Thrown by {@link CrashingSagaStore} right after the write it was told to crash after: it stands for the
 * process dying. An {@link Error} on purpose, so that no engine code that handles application exceptions
 * catches it; the test kit catches it and recovers on a fresh orchestrator.
 */
public final class SimulatedCrash extends Error {
    private static final long serialVersionUID = 1L;

    public SimulatedCrash(String message) {
        super(message, null, false, false);
    }
}
