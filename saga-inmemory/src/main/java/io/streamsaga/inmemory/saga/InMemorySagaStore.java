package io.streamsaga.inmemory.saga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A {@link SagaStore} in memory, for tests and for sagas that need no durability. It keeps the saga data
 * object itself (no JSON on the fast path), so the data must be immutable. Optimistic concurrency is
 * checked per instance under that instance's own monitor (uncontended on the fast path). Thread-safe.
 */
public final class InMemorySagaStore implements SagaStore {
    private static final Comparator<SagaInstance> OLDEST_FIRST =
            Comparator.comparing(SagaInstance::createdAt).thenComparing(SagaInstance::sagaId);

    private final ConcurrentHashMap<String, Entry> entries = new ConcurrentHashMap<>();
    private final boolean keepHistory;
    private final boolean keepFinished;
    private final ObjectMapper mapper;

    /** A store that keeps every instance and its transitions (for queries and sequence diagrams). */
    public InMemorySagaStore() {
        this(true, true);
    }

    /**
     * @param keepHistory  whether transitions are kept; without them {@link #history} is empty, which saves
     *                     memory where nobody draws or audits runs
     * @param keepFinished whether completed, compensated and resolved instances stay until
     *                     {@link #deleteFinishedBefore} (false: removed as soon as they finish, a retention of
     *                     zero for high-volume sagas nobody queries afterwards)
     */
    public InMemorySagaStore(boolean keepHistory, boolean keepFinished) {
        this(keepHistory, keepFinished, null);
    }

    private InMemorySagaStore(boolean keepHistory, boolean keepFinished, ObjectMapper mapper) {
        this.keepHistory = keepHistory;
        this.keepFinished = keepFinished;
        this.mapper = mapper;
    }

    /**
     * A store that keeps the saga data as a JSON tree, as a durable store does (and returns it as a
     * {@code JsonNode}): tests that recover from it prove the data survives serialisation.
     */
    public static InMemorySagaStore serializingJson(ObjectMapper mapper) {
        return new InMemorySagaStore(true, true, Objects.requireNonNull(mapper, "mapper"));
    }

    private SagaInstance stored(SagaInstance instance) {
        if (mapper == null || instance.data() instanceof JsonNode) {
            return instance;
        }
        JsonNode tree = mapper.valueToTree(instance.data());
        return new SagaInstance(instance.sagaId(), instance.sagaName(), instance.definitionVersion(), instance.businessKey(),
                instance.dataType(), tree, instance.status(), instance.steps(), instance.failure(),
                instance.compensationFailure(), instance.createdAt(), instance.updatedAt(), instance.version());
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        Entry entry = new Entry(stored(instance), keepHistory, transition);
        Entry existing = entries.putIfAbsent(instance.sagaId(), entry);
        if (existing != null) {
            throw new ConcurrentSagaUpdateException(instance.sagaId(), 0, existing.current().version());
        }
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        replace(updated, transition);
    }

    /** Without history the transition is never built: the engine's fast path then allocates none. */
    @Override
    public void update(SagaInstance updated, TransitionType type, String step, int attempt, String detail) {
        replace(updated, keepHistory ? new SagaTransition(updated.sagaId(), updated.version(), updated.updatedAt(), type,
                step, attempt, detail) : null);
    }

    private void replace(SagaInstance updated, SagaTransition transition) {
        Entry entry = entries.get(updated.sagaId());
        if (entry == null) {
            throw new ConcurrentSagaUpdateException(updated.sagaId(), updated.version() - 1, 0);
        }
        synchronized (entry) {
            long stored = entry.instance.version();
            if (stored != updated.version() - 1) {
                throw new ConcurrentSagaUpdateException(updated.sagaId(), updated.version() - 1, stored);
            }
            entry.instance = stored(updated);
            if (entry.history != null) {
                entry.history.add(transition);
            }
        }
        if (!keepFinished && updated.status().isTerminal()) {
            entries.remove(updated.sagaId(), entry);
        }
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        Entry entry = entries.get(sagaId);
        return entry == null ? Optional.empty() : Optional.of(entry.current());
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        List<SagaInstance> found = new ArrayList<>();
        for (Entry entry : entries.values()) {
            SagaInstance instance = entry.current();
            if (businessKey != null && businessKey.equals(instance.businessKey())) {
                found.add(instance);
            }
        }
        found.sort(OLDEST_FIRST);
        return found;
    }

    @Override
    public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
        List<SagaInstance> found = new ArrayList<>();
        for (Entry entry : entries.values()) {
            SagaInstance instance = entry.current();
            if (statuses.contains(instance.status())) {
                found.add(instance);
            }
        }
        found.sort(OLDEST_FIRST);
        return found;
    }

    @Override
    public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
        List<SagaInstance> found = new ArrayList<>();
        for (Entry entry : entries.values()) {
            SagaInstance instance = entry.current();
            if (instance.status().isActive() && instance.createdAt().isBefore(createdBefore)) {
                found.add(instance);
            }
        }
        found.sort(OLDEST_FIRST);
        return found;
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        Entry entry = entries.get(sagaId);
        if (entry == null) {
            return List.of();
        }
        synchronized (entry) {
            return entry.history == null ? List.of() : List.copyOf(entry.history);
        }
    }

    @Override
    public int deleteFinishedBefore(Instant cutoff) {
        int[] deleted = {0};
        entries.values().removeIf(entry -> {
            SagaInstance instance = entry.current();
            boolean expired = instance.status().isTerminal() && instance.updatedAt().isBefore(cutoff);
            if (expired) {
                deleted[0]++;
            }
            return expired;
        });
        return deleted[0];
    }

    /** How many instances are stored. */
    public int size() {
        return entries.size();
    }

    private static final class Entry {
        private SagaInstance instance;
        /** Null when the store keeps no history: no list per instance then. */
        private final List<SagaTransition> history;

        Entry(SagaInstance instance, boolean keepHistory, SagaTransition first) {
            this.instance = instance;
            this.history = keepHistory ? new ArrayList<>(10) : null;
            if (keepHistory) {
                history.add(first);
            }
        }

        synchronized SagaInstance current() {
            return instance;
        }
    }
}
