package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.spi.SimulatedProcessCrash;

/**
 * Thrown by {@link CrashingSagaStore} right after the write it was told to crash after: it stands for the
 * process dying. An {@link Error} on purpose, so that no engine code that handles application exceptions
 * catches it; the test kit catches it and recovers on a fresh orchestrator. A {@link SimulatedProcessCrash}, so
 * the engine logs it at DEBUG, not at ERROR as a real Error. The kit recovers only from its store's crash point,
 * which it tells by the instance (the store tags the ones it throws): one thrown by the application's code, with
 * {@link #SimulatedCrash(String)}, fails the kit's call as any other Error does, also after the kit recovered
 * from its own crash.
 */
public final class SimulatedCrash extends SimulatedProcessCrash {
    private static final long serialVersionUID = 1L;

    /** The store that threw it, or null (the application's); not serialized: a copy is no store's. */
    private final transient CrashingSagaStore thrownBy;

    /** A simulated crash of the application's own (never taken for a crash point of the kit's store). */
    public SimulatedCrash(String message) {
        this(message, null);
    }

    SimulatedCrash(String message, CrashingSagaStore thrownBy) {
        super(message);
        this.thrownBy = thrownBy;
    }

    /** Whether {@code store} threw it (its crash point, or a call on it after that). */
    boolean thrownBy(CrashingSagaStore store) {
        return store != null && thrownBy == store;
    }
}
