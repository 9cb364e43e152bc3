package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.spi.SimulatedProcessCrash;

/**
 * Thrown by {@link CrashingSagaStore} right after the write it was told to crash after: it stands for the
 * process dying. An {@link Error} on purpose, so that no engine code that handles application exceptions
 * catches it; the test kit catches it and recovers on a fresh orchestrator. A {@link SimulatedProcessCrash}, so
 * the engine logs it at DEBUG, not at ERROR as a real Error. The kit recovers only from its store's crash point:
 * one thrown by the application's code fails the kit's call, as any other Error does.
 */
public final class SimulatedCrash extends SimulatedProcessCrash {
    private static final long serialVersionUID = 1L;

    public SimulatedCrash(String message) {
        super(message);
    }
}
