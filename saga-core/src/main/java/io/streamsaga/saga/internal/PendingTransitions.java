package io.streamsaga.saga.internal;

import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;

import java.time.Instant;
import java.util.AbstractList;
import java.util.Arrays;
import java.util.RandomAccess;

/**
 * The transitions a run staged since its last store write, by parts, as a list that builds each
 * {@link SagaTransition} only when a store asks for it: a store that keeps no history then costs no
 * transition objects. One per run, reused for every write; confined to the run's lock. Not thread-safe.
 */
final class PendingTransitions extends AbstractList<SagaTransition> implements RandomAccess {
    /** Type, step, attempt, detail and time of each transition, side by side in one array (one allocation). */
    private static final int FIELDS = 5;
    private Object[] parts = new Object[3 * FIELDS];
    private int size;
    private String sagaId;
    private long version;

    /**
     * @param detail a string, or a {@link Throwable} or other object described only when a store reads it
     *               (most stores on the fast path never do)
     */
    void add(TransitionType type, String step, int attempt, Object detail, Instant at) {
        int base = size * FIELDS;
        if (base == parts.length) {
            parts = Arrays.copyOf(parts, parts.length * 2);
        }
        parts[base] = type;
        parts[base + 1] = step;
        parts[base + 2] = attempt; // small attempt numbers box to cached Integers
        parts[base + 3] = detail;
        parts[base + 4] = at;
        size++;
    }

    /** Fixes the saga id and the version every staged transition is written with. */
    PendingTransitions of(String sagaId, long version) {
        this.sagaId = sagaId;
        this.version = version;
        return this;
    }

    TransitionType type(int i) {
        return (TransitionType) parts[i * FIELDS];
    }

    String step(int i) {
        return (String) parts[i * FIELDS + 1];
    }

    int attempt(int i) {
        return (Integer) parts[i * FIELDS + 2];
    }

    String detail(int i) {
        Object detail = parts[i * FIELDS + 3];
        return detail == null ? null : detail instanceof Throwable error ? describe(error) : detail.toString();
    }

    /** An error as a transition's detail: its simple class name and message. */
    static String describe(Throwable error) {
        return error.getClass().getSimpleName() + (error.getMessage() == null ? "" : ": " + error.getMessage());
    }

    private Instant at(int i) {
        return (Instant) parts[i * FIELDS + 4];
    }

    /** Adds each error staged as a detail (a step's failure the write held) to {@code target}'s suppressed, once. */
    void suppressErrorsIn(Throwable target) {
        for (int i = 0; i < size; i++) {
            if (parts[i * FIELDS + 3] instanceof Throwable error) {
                suppressIn(target, error);
            }
        }
    }

    /** Adds {@code error} to {@code target}'s suppressed, unless it is the target or there already. */
    static void suppressIn(Throwable target, Throwable error) {
        if (error != target && !Arrays.asList(target.getSuppressed()).contains(error)) {
            target.addSuppressed(error);
        }
    }

    /** The step of the last staged transition (for error messages). */
    String lastStep() {
        return size > 0 ? step(size - 1) : null;
    }

    void reset() {
        Arrays.fill(parts, 0, size * FIELDS, null);
        size = 0;
    }

    @Override
    public SagaTransition get(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("transition " + index + " of " + size);
        }
        return new SagaTransition(sagaId, version, at(index), type(index), step(index), attempt(index), detail(index));
    }

    @Override
    public int size() {
        return size;
    }
}
