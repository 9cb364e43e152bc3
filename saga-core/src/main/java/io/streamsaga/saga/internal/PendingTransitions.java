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
    private TransitionType[] types = new TransitionType[4];
    private String[] steps = new String[4];
    private int[] attempts = new int[4];
    private String[] details = new String[4];
    private Instant[] times = new Instant[4];
    private int size;
    private String sagaId;
    private long version;

    void add(TransitionType type, String step, int attempt, String detail, Instant at) {
        if (size == types.length) {
            int grown = size * 2;
            types = Arrays.copyOf(types, grown);
            steps = Arrays.copyOf(steps, grown);
            attempts = Arrays.copyOf(attempts, grown);
            details = Arrays.copyOf(details, grown);
            times = Arrays.copyOf(times, grown);
        }
        types[size] = type;
        steps[size] = step;
        attempts[size] = attempt;
        details[size] = detail;
        times[size] = at;
        size++;
    }

    /** Fixes the saga id and the version every staged transition is written with. */
    PendingTransitions of(String sagaId, long version) {
        this.sagaId = sagaId;
        this.version = version;
        return this;
    }

    TransitionType type(int i) {
        return types[i];
    }

    String step(int i) {
        return steps[i];
    }

    int attempt(int i) {
        return attempts[i];
    }

    String detail(int i) {
        return details[i];
    }

    void reset() {
        Arrays.fill(steps, 0, size, null);
        Arrays.fill(details, 0, size, null);
        Arrays.fill(times, 0, size, null);
        size = 0;
    }

    @Override
    public SagaTransition get(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("transition " + index + " of " + size);
        }
        return new SagaTransition(sagaId, version, times[index], types[index], steps[index], attempts[index], details[index]);
    }

    @Override
    public int size() {
        return size;
    }
}
