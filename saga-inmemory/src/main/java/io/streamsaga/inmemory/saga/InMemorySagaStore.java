package io.streamsaga.inmemory.saga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.spi.StoredKeys;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;

/**
 * A {@link SagaStore} in memory, for tests and for sagas that need no durability. It keeps the saga data
 * object itself (no JSON on the fast path), so the data must be immutable. Optimistic concurrency is
 * checked per instance: by a compare-and-set of the instance without history, under the instance's own
 * monitor with it. It takes transition batches ({@link #writesTransitionBatches()}). It is also the
 * {@link NodeRegistry} of the orchestrators sharing it with saga ownership. It refuses, as a durable store does, a
 * saga id, saga, step or node name, business key, data type, failure class or owner holding U+0000 or a lone
 * surrogate or longer than its limit ({@link StoredKeys}, such as {@link StoredKeys#MAX_SAGA_ID_LENGTH}), with nothing
 * written, so that a test on it fails where production would; a read by one finds nothing. Thread-safe.
 */
public final class InMemorySagaStore implements SagaStore, NodeRegistry {
    private static final Comparator<SagaInstance> OLDEST_FIRST =
            Comparator.comparing(SagaInstance::createdAt).thenComparing(SagaInstance::sagaId);

    private final ConcurrentHashMap<String, Entry> entries = new ConcurrentHashMap<>();
    private final boolean keepHistory;
    private final boolean keepFinished;
    private final ObjectMapper mapper;
    private final ConcurrentHashMap<String, NodeHeartbeat> heartbeats = new ConcurrentHashMap<>();

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
     * {@code JsonNode}): tests that recover from it prove the data survives serialisation. Data a durable store cannot
     * write as JSON that reads back (data the mapper cannot write, a map key holding a lone surrogate) is refused with a
     * {@link ConfigurationException}, with nothing written, as a durable store refuses it.
     */
    public static InMemorySagaStore serializingJson(ObjectMapper mapper) {
        return new InMemorySagaStore(true, true, Objects.requireNonNull(mapper, "mapper"));
    }

    /**
     * The instance as stored: as it is, or with its data as a JSON tree when this store serialises. Data a durable store
     * cannot write as JSON that reads back is refused as it refuses it (JdbcSagaStore: "cannot be written as JSON"), with
     * a {@link ConfigurationException}: data the mapper cannot write, and a field name (a map key) holding a lone
     * surrogate, which JSON reads back in a value but not in a name.
     */
    private SagaInstance stored(SagaInstance instance) {
        if (mapper == null) {
            return instance;
        }
        if (instance.data() instanceof JsonNode given) {
            requireReadableNames(given, instance);
            return instance;
        }
        JsonNode tree;
        try {
            tree = mapper.valueToTree(instance.data());
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException("data of saga " + instance.sagaId() + " (type '" + instance.dataType()
                    + "') cannot be written as JSON: " + e.getMessage());
        }
        requireReadableNames(tree, instance);
        return new SagaInstance(instance.sagaId(), instance.sagaName(), instance.definitionVersion(), instance.businessKey(),
                instance.dataType(), tree, instance.status(), instance.steps(), instance.failure(),
                instance.compensationFailure(), instance.createdAt(), instance.updatedAt(), instance.version(),
                instance.owner());
    }

    private static void requireReadableNames(JsonNode node, SagaInstance instance) {
        if (node.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> fields = node.fields(); fields.hasNext(); ) {
                Map.Entry<String, JsonNode> field = fields.next();
                int lone = StoredKeys.firstLoneSurrogate(field.getKey());
                if (lone >= 0) {
                    throw new ConfigurationException(String.format("data of saga %s (type '%s') cannot be written as"
                            + " JSON that reads back: the field name %s holds a lone surrogate (U+%04X at index %d, not"
                            + " half of a pair: malformed UTF-16), which JSON cannot read back in a name",
                            instance.sagaId(), instance.dataType(), StreamSagaException.quote(field.getKey()),
                            (int) field.getKey().charAt(lone), lone));
                }
                requireReadableNames(field.getValue(), instance);
            }
        } else if (node.isArray()) {
            for (JsonNode element : node) {
                requireReadableNames(element, instance);
            }
        }
    }

    @Override
    public boolean writesTransitionBatches() {
        return true;
    }

    @Override
    public boolean keepsHistory() {
        return keepHistory;
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        insertAll(instance, List.of(transition));
    }

    /** Without history the transitions are never read: the engine's fast path then builds none. */
    @Override
    public void insertAll(SagaInstance instance, List<SagaTransition> transitions) {
        requireStorable(instance, null, transitions);
        Entry entry = new Entry(stored(instance), keepHistory ? new ArrayList<>(transitions) : null);
        Entry existing = entries.putIfAbsent(instance.sagaId(), entry);
        if (existing != null) {
            throw new ConcurrentSagaUpdateException(instance.sagaId(), 0, existing.current().version());
        }
        if (!keepFinished && instance.status().isTerminal()) {
            entries.remove(instance.sagaId(), entry);
        }
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        updateAll(updated, List.of(transition));
    }

    /** Without history the transition is never built. */
    @Override
    public void update(SagaInstance updated, TransitionType type, String step, int attempt, String detail) {
        StoredKeys.requireStorable(step, StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
        updateAll(updated, keepHistory ? List.of(new SagaTransition(updated.sagaId(), updated.version(), updated.updatedAt(),
                type, step, attempt, detail)) : List.of());
    }

    @Override
    public void updateAll(SagaInstance updated, List<SagaTransition> transitions) {
        Entry entry = entries.get(updated.sagaId());
        long expected = updated.version() - 1;
        if (entry == null) {
            // refused for what it holds as a durable store refuses it, before looking the saga up: not as a conflict
            requireStorable(updated, null, transitions);
            stored(updated);
            throw new ConcurrentSagaUpdateException(updated.sagaId(), expected, 0);
        }
        requireStorable(updated, entry.current(), transitions);
        SagaInstance replacement = stored(updated);
        if (entry.history == null) {
            SagaInstance current = entry.instance;
            if (current.version() != expected || !entry.replace(current, replacement)) {
                throw new ConcurrentSagaUpdateException(updated.sagaId(), expected, entry.current().version());
            }
        } else {
            synchronized (entry) {
                long stored = entry.instance.version();
                if (stored != expected) {
                    throw new ConcurrentSagaUpdateException(updated.sagaId(), expected, stored);
                }
                entry.instance = replacement;
                entry.history.addAll(transitions);
            }
        }
        if (!keepFinished && updated.status().isTerminal()) {
            entries.remove(updated.sagaId(), entry);
        }
    }

    /**
     * What a durable store refuses to write ({@link StoredKeys}: a NUL, a lone surrogate, a value over its length):
     * refused alike here, before anything is written. The
     * transitions are read only when kept: without history the engine may build them on demand. On an update, a value
     * that is the very object the stored instance holds was checked when it was written: only what changed is scanned,
     * and nothing is allocated (the engine writes every transition through here).
     *
     * @param stored the instance being replaced (its saga id is the updated one's), or null for an insert (and for an
     *               update of a saga not held, refused for such a value as the insert would be, not as a conflict)
     */
    private void requireStorable(SagaInstance s, SagaInstance stored, List<SagaTransition> transitions) {
        if (stored == null) {
            StoredKeys.requireStorable(s.sagaId(), StoredKeys.MAX_SAGA_ID_LENGTH, "saga id");
        }
        if (stored == null || s.sagaName() != stored.sagaName()) {
            StoredKeys.requireStorable(s.sagaName(), StoredKeys.MAX_SAGA_NAME_LENGTH, "saga name");
        }
        if (stored == null || s.businessKey() != stored.businessKey()) {
            StoredKeys.requireStorable(s.businessKey(), StoredKeys.MAX_BUSINESS_KEY_LENGTH, "business key");
        }
        if (stored == null || s.dataType() != stored.dataType()) {
            StoredKeys.requireStorable(s.dataType(), StoredKeys.MAX_DATA_TYPE_LENGTH, "data type");
        }
        if (stored == null || s.owner() != stored.owner()) {
            StoredKeys.requireStorable(s.owner(), StoredKeys.MAX_NODE_ID_LENGTH, "owner node id");
        }
        List<StepState> steps = s.steps();
        List<StepState> storedSteps = stored == null ? List.of() : stored.steps();
        for (int i = 0; i < steps.size(); i++) {
            String name = steps.get(i).name();
            if (i >= storedSteps.size() || name != storedSteps.get(i).name()) {
                StoredKeys.requireStorable(name, StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
            }
        }
        requireStorable(s.failure(), stored == null ? null : stored.failure());
        requireStorable(s.compensationFailure(), stored == null ? null : stored.compensationFailure());
        for (int i = 0; keepHistory && i < transitions.size(); i++) {
            SagaTransition t = transitions.get(i);
            StoredKeys.requireStorable(t.step(), StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
        }
    }

    private static void requireStorable(SagaFailure failure, SagaFailure stored) {
        if (failure != null && failure != stored) {
            StoredKeys.requireStorable(failure.step(), StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
            StoredKeys.requireStorable(failure.errorClass(), StoredKeys.MAX_FAILURE_CLASS_LENGTH, "failure class");
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

    /**
     * Filters in the store: only the matching instances are kept, at most a page of them at a time (the first
     * {@code limit} in {@link RecoveryQuery#ORDER}, by one pass over the instances).
     */
    @Override
    public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
        return firstMatching(query::matches, query.limit());
    }

    /** As {@link #findRecoveryCandidates}: the first {@code limit} matching instances, by one pass over them. */
    @Override
    public List<SagaInstance> findPage(SagaQuery query) {
        return firstMatching(query::matches, query.limit());
    }

    /** One pass over the instances, counting those of the statuses asked for. */
    @Override
    public Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses) {
        long[] counts = new long[SagaStatus.values().length];
        for (Entry entry : entries.values()) {
            counts[entry.current().status().ordinal()]++;
        }
        Map<SagaStatus, Long> found = new EnumMap<>(SagaStatus.class);
        for (SagaStatus status : statuses) {
            found.put(status, counts[status.ordinal()]);
        }
        return Collections.unmodifiableMap(found);
    }

    /** One pass over the instances, counting those of the statuses asked for per saga name. */
    @Override
    public Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses) {
        Map<String, long[]> counted = new TreeMap<>();
        for (Entry entry : entries.values()) {
            SagaInstance instance = entry.current();
            if (statuses.contains(instance.status())) {
                counted.computeIfAbsent(instance.sagaName(), name -> new long[SagaStatus.values().length])
                        [instance.status().ordinal()]++;
            }
        }
        Map<String, Map<SagaStatus, Long>> found = new TreeMap<>();
        counted.forEach((name, counts) -> {
            Map<SagaStatus, Long> ofName = new EnumMap<>(SagaStatus.class);
            for (SagaStatus status : statuses) {
                ofName.put(status, counts[status.ordinal()]);
            }
            found.put(name, Collections.unmodifiableMap(ofName));
        });
        return Collections.unmodifiableMap(found);
    }

    private List<SagaInstance> firstMatching(Predicate<SagaInstance> matches, int limit) {
        PriorityQueue<SagaInstance> firstOnes = new PriorityQueue<>(RecoveryQuery.ORDER.reversed()); // last on top
        for (Entry entry : entries.values()) {
            SagaInstance instance = entry.current();
            if (matches.test(instance)) {
                firstOnes.add(instance);
                if (firstOnes.size() > limit) {
                    firstOnes.poll();
                }
            }
        }
        List<SagaInstance> found = new ArrayList<>(firstOnes);
        found.sort(RecoveryQuery.ORDER);
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
        return deleteFinished(cutoff, Integer.MAX_VALUE);
    }

    /** Deletes at most {@code maxSagas} finished sagas last updated before {@code cutoff}, in no particular order. */
    @Override
    public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
        ConfigurationException.require(maxSagas > 0, "maxSagas must be positive, but was %s", maxSagas);
        return deleteFinished(cutoff, maxSagas);
    }

    private int deleteFinished(Instant cutoff, int maxSagas) {
        Objects.requireNonNull(cutoff, "cutoff");
        int deleted = 0;
        // an iterator that stops at the bound: a scheduled purge calls this once per batch, and a removeIf over the
        // whole map per batch made a run over n old sagas cost n * n / maxSagas checks
        for (Iterator<Map.Entry<String, Entry>> it = entries.entrySet().iterator(); it.hasNext() && deleted < maxSagas; ) {
            Map.Entry<String, Entry> candidate = it.next();
            SagaInstance instance = candidate.getValue().current();
            if (instance.status().isTerminal() && instance.updatedAt().isBefore(cutoff)
                    && entries.remove(candidate.getKey(), candidate.getValue())) { // as removeIf: only the entry read
                deleted++;
            }
        }
        return deleted;
    }

    @Override
    public void heartbeat(String nodeId, Instant at) {
        heartbeat(nodeId, at, null);
    }

    @Override
    public void heartbeat(String nodeId, Instant at, Map<String, Set<Integer>> definitions) {
        StoredKeys.requireStorable(Objects.requireNonNull(nodeId, "nodeId"), StoredKeys.MAX_NODE_ID_LENGTH, "node id");
        heartbeats.put(nodeId, new NodeHeartbeat(at, definitions));
    }

    @Override
    public Map<String, Instant> heartbeats() {
        Map<String, Instant> result = new HashMap<>();
        heartbeats.forEach((node, heartbeat) -> result.put(node, heartbeat.at()));
        return Map.copyOf(result);
    }

    @Override
    public Map<String, NodeHeartbeat> nodes() {
        return Map.copyOf(heartbeats);
    }

    @Override
    public void remove(String nodeId) {
        heartbeats.remove(Objects.requireNonNull(nodeId, "nodeId"));
    }

    @Override
    public boolean remove(String nodeId, Instant at) {
        Objects.requireNonNull(at, "at");
        boolean[] removed = {false};
        heartbeats.computeIfPresent(Objects.requireNonNull(nodeId, "nodeId"), (node, heartbeat) -> {
            removed[0] = heartbeat.at().equals(at); // a compare and delete on the time alone
            return removed[0] ? null : heartbeat;
        });
        return removed[0];
    }

    /** How many instances are stored. */
    public int size() {
        return entries.size();
    }

    private static final class Entry {
        private static final VarHandle INSTANCE;

        static {
            try {
                INSTANCE = MethodHandles.lookup().findVarHandle(Entry.class, "instance", SagaInstance.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        private volatile SagaInstance instance;
        /** Null when the store keeps no history: no list per instance then (guarded by the entry's monitor). */
        private final List<SagaTransition> history;

        Entry(SagaInstance instance, List<SagaTransition> history) {
            this.instance = instance;
            this.history = history;
        }

        SagaInstance current() {
            return instance;
        }

        /** Replaces {@code expected} with {@code replacement} unless another write came first. */
        boolean replace(SagaInstance expected, SagaInstance replacement) {
            return INSTANCE.compareAndSet(this, expected, replacement);
        }
    }
}
