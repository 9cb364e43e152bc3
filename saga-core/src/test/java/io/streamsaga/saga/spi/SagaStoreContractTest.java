package io.streamsaga.saga.spi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.spi.StoredKeys;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The contract every {@link SagaStore} must pass. Extend it in the store's module and implement
 * {@link #createStore()} (a fresh, empty store per test). Shipped in saga-core's test-jar.
 */
public abstract class SagaStoreContractTest {
    /** Saga data used by the contract; stores may return it as the object or as its JSON tree. */
    public record OrderData(String orderId, long amount) {
    }

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    protected SagaStore store;

    /** A new, empty store. */
    protected abstract SagaStore createStore();

    @BeforeEach
    void setUpStore() {
        store = createStore();
    }

    protected static SagaInstance instance(String id, String businessKey, SagaStatus status, Instant createdAt, long version) {
        return new SagaInstance(id, "order-saga", 1, businessKey, "order-saga-data", new OrderData("o-" + id, 100),
                status, List.of(StepState.pending("create-order"), StepState.pending("reserve-inventory")), null, null,
                createdAt, createdAt.plusSeconds(version), version);
    }

    private static SagaTransition transition(SagaInstance instance, TransitionType type) {
        return new SagaTransition(instance.sagaId(), instance.version(), instance.updatedAt(), type, null, 0, null);
    }

    private void insert(SagaInstance instance) {
        store.insert(instance, transition(instance, TransitionType.SAGA_STARTED));
    }

    private static void assertSameData(Object expected, Object actual) {
        if (actual instanceof JsonNode tree) {
            // bind rather than compare trees: JSON read back has IntNode where valueToTree made LongNode
            try {
                assertEquals(expected, MAPPER.treeToValue(tree, expected.getClass()));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new AssertionError("stored saga data does not bind to " + expected.getClass(), e);
            }
        } else {
            assertEquals(expected, actual);
        }
    }

    @Test
    void insertedInstanceIsFoundWithAllItsFields() {
        SagaInstance saga = instance("s-1", "order-1", SagaStatus.RUNNING, T0, 1);
        insert(saga);

        SagaInstance found = store.find("s-1").orElseThrow();
        assertEquals(saga.sagaName(), found.sagaName());
        assertEquals(saga.definitionVersion(), found.definitionVersion());
        assertEquals("order-1", found.businessKey());
        assertEquals("order-saga-data", found.dataType());
        assertSameData(saga.data(), found.data());
        assertEquals(SagaStatus.RUNNING, found.status());
        assertEquals(saga.steps(), found.steps());
        assertEquals(1, found.version());
        assertEquals(saga.createdAt(), found.createdAt());
        assertEquals(List.of(transition(saga, TransitionType.SAGA_STARTED)), store.history("s-1"));
        assertTrue(store.find("missing").isEmpty());
        assertTrue(store.history("missing").isEmpty());
    }

    @Test
    void aSagaCreatedAtAnInstantWithMicrosecondsIsGivenBackCreatedAtExactlyThatInstant() {
        // The engine writes a saga's start to the microsecond and derives its message ids from it (SagaStore's Javadoc)
        Instant created = T0.plusNanos(123_456_000);
        SagaInstance v1 = instance("s-1", null, SagaStatus.RUNNING, created, 1);
        insert(v1);
        assertEquals(created, store.find("s-1").orElseThrow().createdAt(), "createdAt as inserted");

        SagaInstance v2 = instance("s-1", null, SagaStatus.COMPENSATING, created, 2);
        store.update(v2, transition(v2, TransitionType.SAGA_COMPENSATING));
        assertEquals(created, store.find("s-1").orElseThrow().createdAt(), "createdAt after an update");
        assertEquals(List.of(created), createdAts(store.findActiveCreatedBefore(created.plusSeconds(1))),
                "createdAt as findActiveCreatedBefore lists it");
        assertEquals(List.of(created), createdAts(store.findByStatus(EnumSet.of(SagaStatus.COMPENSATING))),
                "createdAt as findByStatus lists it");
        assertEquals(List.of(), createdAts(store.findByBusinessKey("key-1")));
        insert(instance("s-2", "key-1", SagaStatus.RUNNING, created, 1));
        assertEquals(List.of(created), createdAts(store.findByBusinessKey("key-1")),
                "createdAt as findByBusinessKey lists it");
        // Both at the same instant: the second page, after s-1's position (its createdAt as the store gave it back),
        // holds s-2 only if the store compares that microsecond instant exactly
        assertEquals(List.of("s-1", "s-2"), ids(readPages(RecoveryQuery.firstPage(null, Set.of(), 1))),
                "each saga on a page of its own");
        assertEquals(List.of(created, created), createdAts(readPages(RecoveryQuery.firstPage(null, Set.of(), 100))),
                "createdAt as findRecoveryCandidates lists it");
        assertEquals(List.of("s-1", "s-2"), ids(readPages(new SagaQuery(EnumSet.allOf(SagaStatus.class), null, null,
                null, 1))), "each saga on a page of findPage of its own");
    }

    private static List<Instant> createdAts(List<SagaInstance> instances) {
        return instances.stream().map(SagaInstance::createdAt).toList();
    }

    @Test
    void theOwnerIsStoredWithEveryWriteAndNullStaysNull() {
        SagaInstance v1 = instance("s-1", null, SagaStatus.RUNNING, T0, 1).withOwner("node-a");
        insert(v1);
        insert(instance("s-2", null, SagaStatus.RUNNING, T0, 1));
        assertEquals("node-a", store.find("s-1").orElseThrow().owner());
        assertNull(store.find("s-2").orElseThrow().owner());

        SagaInstance v2 = instance("s-1", null, SagaStatus.RUNNING, T0, 2).withOwner("node-b");
        store.update(v2, transition(v2, TransitionType.STEP_STARTED));
        assertEquals("node-b", store.find("s-1").orElseThrow().owner());
        SagaInstance v3 = instance("s-1", null, SagaStatus.RUNNING, T0, 3).withOwner("node-a");
        store.update(v3, TransitionType.STEP_STARTED, "create-order", 1, null);
        assertEquals("node-a", store.find("s-1").orElseThrow().owner());
        assertEquals(List.of("node-a"), store.findByStatus(EnumSet.of(SagaStatus.RUNNING)).stream()
                .filter(i -> i.sagaId().equals("s-1")).map(SagaInstance::owner).toList());
        SagaInstance v4 = instance("s-1", null, SagaStatus.RUNNING, T0, 4);
        store.update(v4, transition(v4, TransitionType.STEP_STARTED));
        assertNull(store.find("s-1").orElseThrow().owner());
    }

    @Test
    void aNodeRegistryKeepsTheLastHeartbeatOfEachNodeUntilItIsRemoved() {
        assumeTrue(store instanceof NodeRegistry, "the store is no NodeRegistry");
        NodeRegistry registry = (NodeRegistry) store;
        assertEquals(Map.of(), registry.heartbeats());

        registry.heartbeat("node-a", T0);
        registry.heartbeat("node-b", T0.plusSeconds(1));
        registry.heartbeat("node-a", T0.plusSeconds(10));
        assertEquals(Map.of("node-a", T0.plusSeconds(10), "node-b", T0.plusSeconds(1)), registry.heartbeats());

        registry.remove("node-a");
        registry.remove("never-registered");
        assertEquals(Map.of("node-b", T0.plusSeconds(1)), registry.heartbeats());
        registry.heartbeat("node-a", T0.plusSeconds(20)); // a node restarted with its id registers again
        assertEquals(Map.of("node-a", T0.plusSeconds(20), "node-b", T0.plusSeconds(1)), registry.heartbeats());
    }

    @Test
    void aNodeRegistryRemovesAHeartbeatByItsTimeOnlyWhileItIsStillThatOne() {
        assumeTrue(store instanceof NodeRegistry, "the store is no NodeRegistry");
        NodeRegistry registry = (NodeRegistry) store;
        registry.heartbeat("node-a", T0);
        Instant read = registry.heartbeats().get("node-a"); // as a recovery read it
        registry.heartbeat("node-a", T0.plusSeconds(10)); // the node is back meanwhile

        assertFalse(registry.remove("node-a", read));
        assertFalse(registry.remove("never-registered", read));
        assertEquals(Map.of("node-a", T0.plusSeconds(10)), registry.heartbeats());
        assertTrue(registry.remove("node-a", registry.heartbeats().get("node-a")));
        assertEquals(Map.of(), registry.heartbeats());
        registry.heartbeat("node-a", T0.plusSeconds(20)); // the next heartbeat of a node still alive writes it again
        assertEquals(Map.of("node-a", T0.plusSeconds(20)), registry.heartbeats());
    }

    @Test
    void aNodeRegistryRemovesAHeartbeatByTheTimeItWasWrittenWithEvenWhenItStoresItRounded() {
        assumeTrue(store instanceof NodeRegistry, "the store is no NodeRegistry");
        NodeRegistry registry = (NodeRegistry) store;
        Instant written = T0.plusNanos(123_456_789); // finer than a database's microseconds
        registry.heartbeat("node-a", written);

        assertTrue(registry.remove("node-a", written), "the heartbeat still is the one written at that time");
        assertEquals(Map.of(), registry.heartbeats());
    }

    @Test
    void aNodeRegistryKeepsTheDefinitionsEachNodeAdvertisedWithItsLastHeartbeat() {
        assumeTrue(store instanceof NodeRegistry, "the store is no NodeRegistry");
        NodeRegistry registry = (NodeRegistry) store;
        registry.heartbeat("node-a", T0, Map.of("pay-saga", Set.of(2, 1), "order-saga", Set.of(1)));
        assumeTrue(registry.nodes().get("node-a").definitions() != null,
                "the registry advertises nothing (NodeRegistry's defaults): the start guard is off over it");
        registry.heartbeat("node-b", T0.plusSeconds(1)); // a node that advertises nothing (an earlier release)
        registry.heartbeat("node-c", T0.plusSeconds(2), Map.of()); // one that runs no saga

        assertEquals(Map.of(
                "node-a", new NodeRegistry.NodeHeartbeat(T0, Map.of("order-saga", Set.of(1), "pay-saga", Set.of(1, 2))),
                "node-b", new NodeRegistry.NodeHeartbeat(T0.plusSeconds(1), null),
                "node-c", new NodeRegistry.NodeHeartbeat(T0.plusSeconds(2), Map.of())), registry.nodes());
        assertEquals(Map.of("node-a", T0, "node-b", T0.plusSeconds(1), "node-c", T0.plusSeconds(2)),
                registry.heartbeats());

        registry.heartbeat("node-a", T0.plusSeconds(10), Map.of("pay-saga", Set.of(2))); // upgraded: replaces
        registry.heartbeat("node-b", T0.plusSeconds(11), Map.of("pay-saga", Set.of(1, 2)));
        assertEquals(new NodeRegistry.NodeHeartbeat(T0.plusSeconds(10), Map.of("pay-saga", Set.of(2))),
                registry.nodes().get("node-a"));
        assertEquals(new NodeRegistry.NodeHeartbeat(T0.plusSeconds(11), Map.of("pay-saga", Set.of(1, 2))),
                registry.nodes().get("node-b"));

        registry.heartbeat("node-a", T0.plusSeconds(20)); // a heartbeat advertising nothing replaces it by nothing
        assertEquals(new NodeRegistry.NodeHeartbeat(T0.plusSeconds(20), null), registry.nodes().get("node-a"));
        registry.remove("node-a");
        assertTrue(registry.remove("node-b", T0.plusSeconds(11)));
        assertEquals(Map.of("node-c", new NodeRegistry.NodeHeartbeat(T0.plusSeconds(2), Map.of())), registry.nodes());
    }

    @Test
    void insertingAnExistingSagaIdIsRejected() {
        insert(instance("s-1", null, SagaStatus.RUNNING, T0, 1));

        ConcurrentSagaUpdateException taken = assertThrows(ConcurrentSagaUpdateException.class,
                () -> insert(instance("s-1", null, SagaStatus.RUNNING, T0, 1)));
        assertTrue(taken.getMessage().startsWith("saga 's-1' exists already"), taken.getMessage());
        assertEquals(1, store.history("s-1").size());
    }

    @Test
    void updateWithTheNextVersionReplacesTheInstanceAndAppendsItsTransition() {
        SagaInstance v1 = instance("s-1", null, SagaStatus.RUNNING, T0, 1);
        insert(v1);
        SagaInstance v2 = new SagaInstance("s-1", "order-saga", 1, null, "order-saga-data", new OrderData("o-1", 250),
                SagaStatus.COMPENSATING, List.of(new StepState("create-order", StepStatus.SUCCEEDED, 1, 0, null),
                new StepState("reserve-inventory", StepStatus.WAITING, 2, 0, T0.plusSeconds(60))),
                new SagaFailure("reserve-inventory", "java.lang.IllegalStateException", "out of stock"), null, T0,
                T0.plusSeconds(5), 2);
        SagaTransition t2 = new SagaTransition("s-1", 2, T0.plusSeconds(5), TransitionType.STEP_FAILED, "reserve-inventory", 2,
                "out of stock");
        store.update(v2, t2);

        SagaInstance found = store.find("s-1").orElseThrow();
        assertEquals(2, found.version());
        assertEquals(SagaStatus.COMPENSATING, found.status());
        assertEquals(v2.steps(), found.steps());
        assertEquals(v2.failure(), found.failure());
        assertSameData(new OrderData("o-1", 250), found.data());
        assertEquals(List.of(transition(v1, TransitionType.SAGA_STARTED), t2), store.history("s-1"));
    }

    @Test
    void updateByPartsStoresTheSameTransitionAndIsCheckedTheSameWay() {
        SagaInstance v1 = instance("s-1", null, SagaStatus.RUNNING, T0, 1);
        insert(v1);
        SagaInstance v2 = instance("s-1", null, SagaStatus.RUNNING, T0, 2);
        store.update(v2, TransitionType.STEP_FAILED, "reserve-inventory", 2, "out of stock");

        assertEquals(2, store.find("s-1").orElseThrow().version());
        assertEquals(List.of(transition(v1, TransitionType.SAGA_STARTED),
                new SagaTransition("s-1", 2, v2.updatedAt(), TransitionType.STEP_FAILED, "reserve-inventory", 2, "out of stock")),
                store.history("s-1"));
        SagaInstance stale = instance("s-1", null, SagaStatus.COMPLETED, T0, 2);
        assertThrows(ConcurrentSagaUpdateException.class,
                () -> store.update(stale, TransitionType.SAGA_COMPLETED, null, 0, null));
        assertEquals(SagaStatus.RUNNING, store.find("s-1").orElseThrow().status());
        assertEquals(2, store.history("s-1").size());
    }

    @Test
    void updateFromAStaleVersionIsRejectedAndChangesNothing() {
        insert(instance("s-1", null, SagaStatus.RUNNING, T0, 1));
        SagaInstance v2 = instance("s-1", null, SagaStatus.RUNNING, T0, 2);
        store.update(v2, transition(v2, TransitionType.STEP_STARTED));

        SagaInstance staleV2 = instance("s-1", null, SagaStatus.COMPLETED, T0, 2);
        ConcurrentSagaUpdateException e = assertThrows(ConcurrentSagaUpdateException.class,
                () -> store.update(staleV2, transition(staleV2, TransitionType.SAGA_COMPLETED)));
        assertEquals("s-1", e.sagaId());
        SagaInstance skipping = instance("s-1", null, SagaStatus.COMPLETED, T0, 4);
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.update(skipping, transition(skipping, TransitionType.SAGA_COMPLETED)));

        assertEquals(SagaStatus.RUNNING, store.find("s-1").orElseThrow().status());
        assertEquals(2, store.find("s-1").orElseThrow().version());
        assertEquals(2, store.history("s-1").size());
    }

    @Test
    void updateOfAnUnknownSagaIsRejected() {
        SagaInstance ghost = instance("ghost", null, SagaStatus.RUNNING, T0, 2);
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.update(ghost, transition(ghost, TransitionType.STEP_STARTED)));
        assertTrue(store.find("ghost").isEmpty());
    }

    @Test
    void concurrentUpdatesFromTheSameVersionLetExactlyOneWin() throws Exception {
        insert(instance("s-1", null, SagaStatus.RUNNING, T0, 1));
        int contenders = 8;
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            CountDownLatch go = new CountDownLatch(1);
            AtomicInteger wins = new AtomicInteger();
            AtomicInteger conflicts = new AtomicInteger();
            Future<?>[] futures = new Future<?>[contenders];
            for (int i = 0; i < contenders; i++) {
                SagaInstance v2 = instance("s-1", "winner-" + i, SagaStatus.RUNNING, T0, 2);
                futures[i] = pool.submit(() -> {
                    go.await();
                    try {
                        store.update(v2, transition(v2, TransitionType.STEP_STARTED));
                        wins.incrementAndGet();
                    } catch (ConcurrentSagaUpdateException e) {
                        conflicts.incrementAndGet();
                    }
                    return null;
                });
            }
            go.countDown();
            for (Future<?> f : futures) {
                f.get(30, TimeUnit.SECONDS);
            }
            assertEquals(1, wins.get());
            assertEquals(contenders - 1, conflicts.get());
            assertEquals(2, store.history("s-1").size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void queriesFindByBusinessKeyStatusAndAgeOldestFirst() {
        insert(instance("a", "order-1", SagaStatus.RUNNING, T0.plusSeconds(10), 1));
        insert(instance("b", "order-1", SagaStatus.COMPENSATING, T0, 1));
        insert(instance("c", "order-2", SagaStatus.COMPLETED, T0, 1));
        insert(instance("d", "order-3", SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1));

        assertEquals(List.of("b", "a"), ids(store.findByBusinessKey("order-1")));
        assertTrue(store.findByBusinessKey("nobody").isEmpty());
        assertEquals(List.of("b", "a"), ids(store.findByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING))));
        assertEquals(List.of("d"), ids(store.findByStatus(Set.of(SagaStatus.FAILED_NEEDS_ATTENTION))));
        assertEquals(List.of("b"), ids(store.findActiveCreatedBefore(T0.plusSeconds(5))));
        assertEquals(List.of("b", "a"), ids(store.findActiveCreatedBefore(T0.plus(Duration.ofHours(1)))));
    }

    @Test
    void recoveryCandidatesAreTheUnfinishedSagasUpdatedAtOrBeforeTheTimeAndOfNoExcludedOwnerPageByPageOldestFirst() {
        insert(instance("a", null, SagaStatus.RUNNING, T0, 1)); // updated at T0 + 1 s (version 1), no owner
        insert(instance("b", null, SagaStatus.COMPENSATING, T0.plusSeconds(10), 1).withOwner("dead-node"));
        insert(instance("h", null, SagaStatus.RUNNING, T0.plusSeconds(10), 1)); // created with b: after it by id
        insert(instance("c", null, SagaStatus.RUNNING, T0.plusSeconds(20), 1).withOwner("live-node"));
        insert(instance("d", null, SagaStatus.RUNNING, T0.plusSeconds(30), 1).withOwner("this-node"));
        insert(instance("e", null, SagaStatus.RUNNING, T0.plusSeconds(40), 1)); // updated after the time below
        insert(instance("f", null, SagaStatus.COMPLETED, T0, 1));
        insert(instance("g", null, SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1));

        assertEquals(List.of("a", "b", "h", "c", "d", "e"),
                ids(readPages(RecoveryQuery.firstPage(null, Set.of(), 100))));
        RecoveryQuery query = RecoveryQuery.firstPage(T0.plusSeconds(31), Set.of("live-node"), 2); // d: at the time
        List<SagaInstance> candidates = readPages(query);
        assertEquals(List.of("a", "b", "h", "d"), ids(candidates));
        assertSameData(new OrderData("o-a", 100), candidates.get(0).data());
        assertEquals("dead-node", candidates.get(1).owner());
        assertEquals(List.of("h", "d"), ids(readPages(query.next(candidates.get(1), Set.of("live-node")))));
        assertEquals(List.of("a", "b", "h", "c", "d"),
                ids(readPages(RecoveryQuery.firstPage(T0.plusSeconds(31), Set.of("other-node"), 1))));
        assertEquals(List.of(), ids(readPages(RecoveryQuery.firstPage(T0, Set.of(), 3))), "none updated by T0");
        assertEquals(List.of(), ids(readPages(RecoveryQuery.firstPage(Instant.MIN, Set.of(), 3))));
    }

    /**
     * All the pages of {@code query}, read as a recovery reads them (the next one after the last instance of a page
     * that holds exactly the limit); each holds at most the limit, but the last one of a store that cannot page.
     */
    private List<SagaInstance> readPages(RecoveryQuery query) {
        List<SagaInstance> all = new java.util.ArrayList<>();
        while (true) {
            List<SagaInstance> page = store.findRecoveryCandidates(query);
            all.addAll(page);
            if (page.size() != query.limit()) {
                return all;
            }
            query = query.next(page.get(page.size() - 1), query.excludedOwners());
        }
    }

    @Test
    void pagesOfAQueryHoldAtMostTheLimitOfTheMatchingSagasOldestFirstThenById() {
        insert(instance("a", "order-1", SagaStatus.RUNNING, T0, 1)); // updated at T0 + 1 s (version 1)
        insert(instance("c", "order-1", SagaStatus.RUNNING, T0.plusSeconds(10), 1)); // created with b: after it by id
        insert(instance("b", "order-2", SagaStatus.COMPENSATING, T0.plusSeconds(10), 1));
        insert(instance("d", "order-1", SagaStatus.COMPLETED, T0.plusSeconds(20), 1));
        insert(instance("e", null, SagaStatus.FAILED_NEEDS_ATTENTION, T0.plusSeconds(30), 1));
        insert(instance("f", "order-1", SagaStatus.RUNNING, T0.plusSeconds(40), 1)); // updated at T0 + 41 s
        Set<SagaStatus> active = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING);

        List<SagaInstance> first = store.findPage(new SagaQuery(active, null, null, null, 2));
        assertEquals(List.of("a", "b"), ids(first));
        assertSameData(new OrderData("o-a", 100), first.get(0).data());
        assertEquals(List.of("c", "f"), ids(store.findPage(new SagaQuery(active, null, null, null, 2).next(first.get(1)))));
        for (int limit : List.of(1, 2, 3, 100)) {
            assertEquals(List.of("a", "b", "c", "f"), ids(readPages(new SagaQuery(active, null, null, null, limit))),
                    "pages of " + limit);
        }
        assertEquals(List.of("a", "b", "c", "d", "e", "f"),
                ids(readPages(new SagaQuery(EnumSet.allOf(SagaStatus.class), null, null, null, 4))));
        assertEquals(List.of("e"), ids(store.findPage(new SagaQuery(Set.of(SagaStatus.FAILED_NEEDS_ATTENTION), null,
                null, null, 10))));
        assertEquals(List.of("a", "c", "d", "f"), ids(readPages(new SagaQuery(EnumSet.allOf(SagaStatus.class),
                "order-1", null, null, 1))));
        assertEquals(List.of("a", "c", "f"), ids(readPages(new SagaQuery(Set.of(SagaStatus.RUNNING), "order-1", null,
                null, 2))));
        assertEquals(List.of(), store.findPage(new SagaQuery(active, "nobody", null, null, 10)));
        // last updated strictly before the time: f, updated at T0 + 41 s exactly, is not
        assertEquals(List.of("a", "b", "c"), ids(readPages(new SagaQuery(active, null, T0.plusSeconds(41), null, 2))));
        assertEquals(List.of("a", "b", "c", "f"), ids(readPages(new SagaQuery(active, null, T0.plusSeconds(42), null,
                2))));
        assertEquals(List.of("c"), ids(store.findPage(new SagaQuery(active, "order-1", T0.plusSeconds(41),
                RecoveryQuery.Position.of(first.get(0)), 10))));
        assertEquals(List.of(), store.findPage(new SagaQuery(active, null, T0.plusSeconds(1), null, 10)), "a at T0 + 1 s");
        assertEquals(List.of(), store.findPage(new SagaQuery(active, null, Instant.MIN, null, 10)));
    }

    @Test
    void aSagaThatChangesStatusBetweenPagesIsOnNoPageTwiceAndMovesNoOtherOffTheNextPage() {
        for (int i = 0; i < 4; i++) {
            insert(instance("s-" + i, null, SagaStatus.RUNNING, T0.plusSeconds(10L * i), 1));
        }
        SagaQuery running = new SagaQuery(Set.of(SagaStatus.RUNNING), null, null, null, 2);
        List<SagaInstance> first = store.findPage(running);
        assertEquals(List.of("s-0", "s-1"), ids(first));
        finish("s-0"); // left the query on the page read: an offset would now skip s-2
        finish("s-2"); // left it on the page to read
        assertEquals(List.of("s-3"), ids(store.findPage(running.next(first.get(1)))));

        SagaQuery runningOrDone = new SagaQuery(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPLETED), null, null, null,
                2);
        List<SagaInstance> page = store.findPage(runningOrDone);
        assertEquals(List.of("s-0", "s-1"), ids(page));
        finish("s-1"); // still matching, updated later: on the page read only
        assertEquals(List.of("s-2", "s-3"), ids(store.findPage(runningOrDone.next(page.get(1)))));
    }

    /** {@link #instance} of the saga {@code sagaName}. */
    private static SagaInstance ofSaga(String sagaName, String id, SagaStatus status) {
        return ofSaga(sagaName, id, status, T0);
    }

    /** {@link #instance} of the saga {@code sagaName}, created (and last updated a second after) {@code createdAt}. */
    private static SagaInstance ofSaga(String sagaName, String id, SagaStatus status, Instant createdAt) {
        SagaInstance order = instance(id, null, status, createdAt, 1);
        return new SagaInstance(id, sagaName, 1, null, order.dataType(), order.data(), status, order.steps(), null,
                null, order.createdAt(), order.updatedAt(), order.version());
    }

    @Test
    void countsBySagaAndStatusHoldEachSagaNameWithASagaInAStatusAskedForEachStatusOfItZeroWhenNone() {
        insert(ofSaga("order-saga", "o-1", SagaStatus.RUNNING));
        insert(ofSaga("order-saga", "o-2", SagaStatus.RUNNING));
        insert(ofSaga("order-saga", "o-3", SagaStatus.FAILED_NEEDS_ATTENTION));
        insert(ofSaga("refund-saga", "r-1", SagaStatus.COMPENSATING));
        insert(ofSaga("archive-saga", "a-1", SagaStatus.COMPLETED));
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION);

        Map<String, Map<SagaStatus, Long>> counts = store.countBySagaAndStatus(attention);

        assertEquals(Map.of(
                "order-saga", Map.of(SagaStatus.RUNNING, 2L, SagaStatus.COMPENSATING, 0L,
                        SagaStatus.FAILED_NEEDS_ATTENTION, 1L),
                "refund-saga", Map.of(SagaStatus.RUNNING, 0L, SagaStatus.COMPENSATING, 1L,
                        SagaStatus.FAILED_NEEDS_ATTENTION, 0L)), counts, "no archive-saga: none in a status asked for");
        assertEquals(List.of("order-saga", "refund-saga"), List.copyOf(counts.keySet()), "in the names' order");
        assertEquals(List.copyOf(attention), List.copyOf(counts.get("refund-saga").keySet()), "in the enum's order");
        assertEquals(Map.of("archive-saga", Map.of(SagaStatus.COMPLETED, 1L)),
                store.countBySagaAndStatus(Set.of(SagaStatus.COMPLETED)));

        finish("r-1");
        assertEquals(Map.of(
                "archive-saga", Map.of(SagaStatus.COMPENSATING, 0L, SagaStatus.COMPLETED, 1L),
                "refund-saga", Map.of(SagaStatus.COMPENSATING, 0L, SagaStatus.COMPLETED, 1L)),
                store.countBySagaAndStatus(EnumSet.of(SagaStatus.COMPENSATING, SagaStatus.COMPLETED)),
                "after an update; order-saga, none in them, left out");
    }

    /**
     * Three saga names over every status, the finished sagas of two of them old enough for retention:
     * {@code order-saga} running, completed (old and new), compensated (old); {@code refund-saga} needing attention,
     * resolved (old); {@code archive-saga} only finished ones, all old. Returns the retention cutoff.
     */
    private Instant sagasOfThreeNamesSomeFinishedBeforeTheCutoff() {
        Instant old = T0;
        Instant recent = T0.plus(Duration.ofDays(2));
        insert(ofSaga("order-saga", "o-run", SagaStatus.RUNNING, old));
        insert(ofSaga("order-saga", "o-done-old", SagaStatus.COMPLETED, old));
        insert(ofSaga("order-saga", "o-done-new", SagaStatus.COMPLETED, recent));
        insert(ofSaga("order-saga", "o-comp-old", SagaStatus.COMPENSATED, old));
        insert(ofSaga("refund-saga", "r-attention", SagaStatus.FAILED_NEEDS_ATTENTION, old));
        insert(ofSaga("refund-saga", "r-resolved-old", SagaStatus.RESOLVED, old));
        insert(ofSaga("archive-saga", "a-done-old", SagaStatus.COMPLETED, old));
        insert(ofSaga("archive-saga", "a-comp-old", SagaStatus.COMPENSATED, old));
        assertEquals(Map.of(
                "archive-saga", counts(0, 0, 1, 1, 0, 0),
                "order-saga", counts(1, 0, 2, 1, 0, 0),
                "refund-saga", counts(0, 0, 0, 0, 1, 1)),
                store.countBySagaAndStatus(EnumSet.allOf(SagaStatus.class)), "before the deletion");
        return T0.plus(Duration.ofDays(1));
    }

    /** A count of every status: running, compensating, completed, compensated, needing attention, resolved. */
    private static Map<SagaStatus, Long> counts(long running, long compensating, long completed, long compensated,
                                                long attention, long resolved) {
        Map<SagaStatus, Long> counts = new EnumMap<>(Map.of(SagaStatus.RUNNING, running,
                SagaStatus.COMPENSATING, compensating, SagaStatus.COMPLETED, completed,
                SagaStatus.COMPENSATED, compensated, SagaStatus.FAILED_NEEDS_ATTENTION, attention,
                SagaStatus.RESOLVED, resolved));
        assertEquals(EnumSet.allOf(SagaStatus.class), counts.keySet(), "a count of every status");
        return counts;
    }

    @Test
    void countsBySagaAndStatusAfterARetentionDeletionCountEachPairLeftAndLeaveOutANameWithNoSagaLeft() {
        Instant cutoff = sagasOfThreeNamesSomeFinishedBeforeTheCutoff();

        assertEquals(5, store.deleteFinishedBefore(cutoff));

        assertEquals(Map.of(
                "order-saga", counts(1, 0, 1, 0, 0, 0),
                "refund-saga", counts(0, 0, 0, 0, 1, 0)),
                store.countBySagaAndStatus(EnumSet.allOf(SagaStatus.class)),
                "each (saga, status) pair less its deleted sagas; archive-saga, none left, left out");
        assertEquals(Map.of("order-saga", Map.of(SagaStatus.COMPLETED, 1L, SagaStatus.COMPENSATED, 0L,
                        SagaStatus.RESOLVED, 0L)),
                store.countBySagaAndStatus(EnumSet.of(SagaStatus.COMPLETED, SagaStatus.COMPENSATED,
                        SagaStatus.RESOLVED)),
                "refund-saga, none left in a finished status, left out");
        assertEquals(Map.of(SagaStatus.RUNNING, 1L, SagaStatus.COMPLETED, 1L, SagaStatus.FAILED_NEEDS_ATTENTION, 1L),
                store.countByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPLETED,
                        SagaStatus.FAILED_NEEDS_ATTENTION)), "the totals by status agree");

        insert(ofSaga("archive-saga", "a-new", SagaStatus.RUNNING, cutoff));
        assertEquals(Map.of("archive-saga", Map.of(SagaStatus.RUNNING, 1L),
                        "order-saga", Map.of(SagaStatus.RUNNING, 1L)),
                store.countBySagaAndStatus(Set.of(SagaStatus.RUNNING)),
                "a name whose sagas were all deleted is counted again with a new one");
    }

    @Test
    void countsBySagaAndStatusFollowEachBatchOfABatchedPurgeAndEndAsAfterOneDeletion() {
        Instant cutoff = sagasOfThreeNamesSomeFinishedBeforeTheCutoff();
        long stored = 8;

        int deleted;
        do {
            deleted = store.deleteFinishedBefore(cutoff, 2);
            stored -= deleted;
            Map<String, Map<SagaStatus, Long>> counts = store.countBySagaAndStatus(EnumSet.allOf(SagaStatus.class));
            assertEquals(stored, counts.values().stream().flatMap(ofName -> ofName.values().stream())
                    .mapToLong(Long::longValue).sum(), "after a batch of " + deleted + ": " + counts);
            counts.values().forEach(ofName -> assertTrue(ofName.values().stream().anyMatch(n -> n > 0),
                    "a name is counted only with a saga left: " + counts));
        } while (deleted == 2);

        assertEquals(3, stored);
        assertEquals(Map.of(
                "order-saga", counts(1, 0, 1, 0, 0, 0),
                "refund-saga", counts(0, 0, 0, 0, 1, 0)),
                store.countBySagaAndStatus(EnumSet.allOf(SagaStatus.class)));
    }

    private void finish(String sagaId) {
        SagaInstance stored = store.find(sagaId).orElseThrow();
        SagaInstance done = new SagaInstance(sagaId, stored.sagaName(), stored.definitionVersion(),
                stored.businessKey(), stored.dataType(), new OrderData("o-" + sagaId, 100), SagaStatus.COMPLETED,
                stored.steps(), null, null, stored.createdAt(), stored.updatedAt().plusSeconds(100),
                stored.version() + 1);
        store.update(done, transition(done, TransitionType.SAGA_COMPLETED));
    }

    /** All the pages of {@code query}, each the next after the last saga of a page that holds exactly the limit. */
    private List<SagaInstance> readPages(SagaQuery query) {
        List<SagaInstance> all = new java.util.ArrayList<>();
        while (true) {
            List<SagaInstance> page = store.findPage(query);
            assertTrue(page.size() <= query.limit(), "a page of " + page.size() + " over the limit " + query.limit());
            all.addAll(page);
            if (page.size() != query.limit()) {
                return all;
            }
            query = query.next(page.get(page.size() - 1));
        }
    }

    @Test
    void countsByStatusAreOfTheStatusesAskedForEachOneZeroWhenNoSagaIsInItAndFollowUpdatesAndDeletions() {
        insert(instance("r-1", null, SagaStatus.RUNNING, T0, 1));
        insert(instance("r-2", "order-1", SagaStatus.RUNNING, T0.plusSeconds(10), 1));
        insert(instance("c-1", null, SagaStatus.COMPENSATING, T0, 1));
        insert(instance("f-1", null, SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1));
        insert(instance("d-1", null, SagaStatus.COMPLETED, T0, 1));
        Set<SagaStatus> attention = EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING,
                SagaStatus.FAILED_NEEDS_ATTENTION, SagaStatus.RESOLVED);

        Map<SagaStatus, Long> counts = store.countByStatus(attention);
        assertEquals(Map.of(SagaStatus.RUNNING, 2L, SagaStatus.COMPENSATING, 1L, SagaStatus.FAILED_NEEDS_ATTENTION, 1L,
                SagaStatus.RESOLVED, 0L), counts, "every status asked for, 0 for none, and no other");
        assertEquals(List.copyOf(attention), List.copyOf(counts.keySet()), "in the enum's order");
        assertEquals(Map.of(SagaStatus.COMPLETED, 1L), store.countByStatus(Set.of(SagaStatus.COMPLETED)));
        Map<SagaStatus, Long> all = store.countByStatus(EnumSet.allOf(SagaStatus.class));
        assertEquals(5L, all.values().stream().mapToLong(Long::longValue).sum());
        assertEquals(0L, all.get(SagaStatus.COMPENSATED));

        finish("r-1");
        assertEquals(Map.of(SagaStatus.RUNNING, 1L, SagaStatus.COMPLETED, 2L),
                store.countByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPLETED)), "after an update");
        store.deleteFinishedBefore(T0.plus(Duration.ofDays(1)));
        assertEquals(Map.of(SagaStatus.RUNNING, 1L, SagaStatus.COMPLETED, 0L),
                store.countByStatus(EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPLETED)), "after a deletion");
    }

    @Test
    void retentionDeletesOnlyFinishedInstancesLastUpdatedBeforeTheCutoff() {
        insert(instance("old-done", null, SagaStatus.COMPLETED, T0, 1));
        insert(instance("old-compensated", null, SagaStatus.COMPENSATED, T0, 1));
        insert(instance("old-running", null, SagaStatus.RUNNING, T0, 1));
        insert(instance("old-attention", null, SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1));
        insert(instance("new-done", null, SagaStatus.COMPLETED, T0.plus(Duration.ofDays(2)), 1));

        int deleted = store.deleteFinishedBefore(T0.plus(Duration.ofDays(1)));

        assertEquals(2, deleted);
        assertFalse(store.find("old-done").isPresent());
        assertFalse(store.find("old-compensated").isPresent());
        assertTrue(store.history("old-done").isEmpty());
        assertTrue(store.find("old-running").isPresent());
        assertTrue(store.find("old-attention").isPresent());
        assertTrue(store.find("new-done").isPresent());
    }

    @Test
    void writesWithoutOutgoingMessagesAreThePlainWrites() {
        SagaInstance first = instance("m-1", "k-m", SagaStatus.RUNNING, T0, 1);
        store.insert(first, transition(first, TransitionType.SAGA_STARTED), List.of());
        SagaInstance second = instance("m-1", "k-m", SagaStatus.COMPENSATING, T0, 2);
        store.update(second, transition(second, TransitionType.SAGA_COMPENSATING), List.of());

        assertEquals(2, store.find("m-1").orElseThrow().version());
        assertEquals(SagaStatus.COMPENSATING, store.find("m-1").orElseThrow().status());
        SagaInstance stale = instance("m-1", "k-m", SagaStatus.COMPENSATED, T0, 2);
        assertThrows(ConcurrentSagaUpdateException.class,
                () -> store.update(stale, transition(stale, TransitionType.SAGA_COMPENSATED), List.of()));
        assertEquals(SagaStatus.COMPENSATING, store.find("m-1").orElseThrow().status());
    }

    @Test
    void outgoingMessagesAreStoredWithTheTransitionOrRefusedWithNothingWritten() {
        SagaInstance first = instance("m-2", "k-m", SagaStatus.RUNNING, T0, 1);
        Message command = Message.builder("contract-commands").id("m-2/step/1").key("m-2").type("contract-command")
                .payload("{}".getBytes(java.nio.charset.StandardCharsets.UTF_8)).build();
        if (store.storesOutgoingMessages()) {
            store.insert(first, transition(first, TransitionType.SAGA_STARTED), List.of(command));
            assertEquals(1, store.find("m-2").orElseThrow().version());
        } else {
            assertThrows(ConfigurationException.class,
                    () -> store.insert(first, transition(first, TransitionType.SAGA_STARTED), List.of(command)));
            assertTrue(store.find("m-2").isEmpty(), "a refused write leaves nothing behind");
        }
    }

    @Test
    void transitionBatchesAreWrittenAtomicallyInOrderOrRefusedWithNothingWritten() {
        SagaInstance v1 = instance("b-1", null, SagaStatus.RUNNING, T0, 1);
        SagaTransition started = transition(v1, TransitionType.SAGA_STARTED);
        SagaTransition firstStep = new SagaTransition("b-1", 1, v1.updatedAt(), TransitionType.STEP_STARTED, "create-order", 1, null);
        SagaInstance v2 = instance("b-1", null, SagaStatus.RUNNING, T0, 2);
        SagaTransition succeeded = new SagaTransition("b-1", 2, v2.updatedAt(), TransitionType.STEP_SUCCEEDED, "create-order", 1, null);
        SagaTransition secondStep = new SagaTransition("b-1", 2, v2.updatedAt(), TransitionType.STEP_STARTED, "reserve-inventory", 1,
                null);
        if (!store.writesTransitionBatches()) {
            assertThrows(ConfigurationException.class, () -> store.insertAll(v1, List.of(started, firstStep)));
            assertTrue(store.find("b-1").isEmpty(), "a refused batch leaves nothing behind");
            store.insertAll(v1, List.of(started)); // a batch of one is a plain write
            store.updateAll(v2, List.of(succeeded));
            assertEquals(List.of(started, succeeded), store.history("b-1"));
            return;
        }
        // A store that keeps no history is given no transitions, as the engine does.
        boolean kept = store.keepsHistory();
        store.insertAll(v1, kept ? List.of(started, firstStep) : List.of());
        assertEquals(1, store.find("b-1").orElseThrow().version());
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.insertAll(v1, List.of(started, firstStep)));
        store.updateAll(v2, kept ? List.of(succeeded, secondStep) : List.of());

        assertEquals(2, store.find("b-1").orElseThrow().version());
        List<SagaTransition> history = store.history("b-1");
        assertEquals(kept ? List.of(started, firstStep, succeeded, secondStep) : List.of(), history,
                "a store keeps every transition of a batch, in order, or (keepsHistory() false) none");
        SagaInstance stale = instance("b-1", null, SagaStatus.COMPLETED, T0, 2);
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.updateAll(stale,
                List.of(transition(stale, TransitionType.STEP_SUCCEEDED), transition(stale, TransitionType.SAGA_COMPLETED))));
        assertEquals(SagaStatus.RUNNING, store.find("b-1").orElseThrow().status());
        assertEquals(history.size(), store.history("b-1").size());
    }

    /**
     * What every store refuses, as a durable one must (PostgreSQL cannot store a NUL, and its driver writes a lone
     * surrogate as '?', so two ids differing only there would be one saga): an id, key or name holding U+0000 or a
     * lone surrogate is refused with a ConfigurationException before anything is stored ({@code StoredKeys}), and a
     * read by one finds nothing. A well-formed pair (an emoji) is an ordinary character.
     */
    @Test
    void idsKeysAndNamesHoldingANulOrALoneSurrogateAreRefusedWithNothingStoredAndFindNothing() {
        SagaInstance ok = instance("s-1", "order-1", SagaStatus.RUNNING, T0, 1);
        insert(ok);
        for (String bad : List.of("x\0y", "x\uD800y", "x\uDC00", "x\uD83D")) {
            SagaFailure failure = new SagaFailure("create-order", "java.lang.IllegalStateException", "boom");
            List<SagaInstance> refused = List.of(
                    instance(bad, null, SagaStatus.RUNNING, T0, 1),
                    withFields(ok, bad, "order-saga-data", null, List.of(), null),
                    withFields(ok, "order-saga", bad, null, List.of(), null),
                    withFields(ok, "order-saga", "order-saga-data", bad, List.of(), null),
                    withFields(ok, "order-saga", "order-saga-data", null, List.of(StepState.pending(bad)), null),
                    withFields(ok, "order-saga", "order-saga-data", null, List.of(),
                            new SagaFailure(bad, failure.errorClass(), failure.message())),
                    withFields(ok, "order-saga", "order-saga-data", null, List.of(),
                            new SagaFailure(failure.step(), bad, failure.message())),
                    instance("s-2", bad, SagaStatus.RUNNING, T0, 1),
                    instance("s-2", null, SagaStatus.RUNNING, T0, 1).withOwner(bad));
            for (SagaInstance instance : refused) {
                boolean badId = instance.sagaId().equals(bad);
                SagaInstance inserted = copy(instance, badId ? bad : "s-2", 1);
                assertThrows(ConfigurationException.class, () -> insert(inserted), instance.toString());
                if (!badId) {
                    SagaInstance next = copy(instance, "s-1", 2);
                    assertThrows(ConfigurationException.class,
                            () -> store.update(next, transition(next, TransitionType.STEP_STARTED)), instance.toString());
                }
            }
            SagaInstance v2 = instance("s-1", "order-1", SagaStatus.RUNNING, T0, 2);
            assertThrows(ConfigurationException.class, () -> store.update(v2, new SagaTransition("s-1", 2,
                    v2.updatedAt(), TransitionType.STEP_STARTED, bad, 1, null)));
            assertThrows(ConfigurationException.class,
                    () -> store.update(v2, TransitionType.STEP_STARTED, bad, 1, null));
            assertEquals(ok.version(), store.find("s-1").orElseThrow().version(), "a refused write changes nothing");
            assertTrue(store.find("s-2").isEmpty(), "a refused write stores nothing");
            assertTrue(store.find(bad).isEmpty());
            assertEquals(List.of(), store.findByBusinessKey(bad));
            assertEquals(List.of(), store.history(bad));
            if (store instanceof NodeRegistry registry) {
                assertThrows(ConfigurationException.class, () -> registry.heartbeat(bad, T0));
                registry.remove(bad);
                assertFalse(registry.remove(bad, T0));
                assertEquals(Map.of(), registry.heartbeats());
            }
        }
        assertEquals(1, store.history("s-1").size());
        String emoji = "s-\uD83D\uDE00";
        insert(instance(emoji, emoji, SagaStatus.RUNNING, T0, 1).withOwner(emoji));
        assertEquals(emoji, store.find(emoji).orElseThrow().owner());
        assertEquals(List.of(emoji), ids(store.findByBusinessKey(emoji)));
    }

    /**
     * Every store keeps ids, keys and names up to the lengths of {@link StoredKeys} (the JDBC schema's column widths)
     * and refuses a longer one with a ConfigurationException before anything is stored, alike: an in-memory store that
     * took one would let a test pass where production fails.
     */
    @Test
    void idsKeysAndNamesUpToTheirStoredLengthAreKeptAndALongerOneIsRefusedWithNothingStored() {
        String id = "s".repeat(StoredKeys.MAX_SAGA_ID_LENGTH);
        String name = "n".repeat(StoredKeys.MAX_SAGA_NAME_LENGTH);
        String key = "k".repeat(StoredKeys.MAX_BUSINESS_KEY_LENGTH);
        String type = "t".repeat(StoredKeys.MAX_DATA_TYPE_LENGTH);
        String step = "p".repeat(StoredKeys.MAX_STEP_NAME_LENGTH);
        String errorClass = "e".repeat(StoredKeys.MAX_FAILURE_CLASS_LENGTH);
        String node = "o".repeat(StoredKeys.MAX_NODE_ID_LENGTH);
        SagaInstance longest = withFields(instance(id, null, SagaStatus.RUNNING, T0, 1), name, type, key,
                List.of(StepState.pending(step)), new SagaFailure(step, errorClass, "boom")).withOwner(node);
        store.insert(longest, new SagaTransition(id, 1, longest.updatedAt(), TransitionType.SAGA_STARTED, step, 1, null));
        SagaInstance found = store.find(id).orElseThrow();
        assertEquals(List.of(name, type, key, step, step, errorClass, node), List.of(found.sagaName(), found.dataType(),
                found.businessKey(), found.steps().get(0).name(), found.failure().step(), found.failure().errorClass(),
                found.owner()));
        assertEquals(step, store.history(id).get(0).step());

        SagaInstance ok = instance("s-1", "order-1", SagaStatus.RUNNING, T0, 1);
        insert(ok);
        SagaFailure failure = new SagaFailure("create-order", "java.lang.IllegalStateException", "boom");
        List<SagaInstance> refused = List.of(
                instance(id + "s", null, SagaStatus.RUNNING, T0, 1),
                withFields(ok, name + "n", "order-saga-data", null, List.of(), null),
                withFields(ok, "order-saga", type + "t", null, List.of(), null),
                withFields(ok, "order-saga", "order-saga-data", key + "k", List.of(), null),
                withFields(ok, "order-saga", "order-saga-data", null, List.of(StepState.pending(step + "p")), null),
                withFields(ok, "order-saga", "order-saga-data", null, List.of(),
                        new SagaFailure(step + "p", failure.errorClass(), failure.message())),
                withFields(ok, "order-saga", "order-saga-data", null, List.of(),
                        new SagaFailure(failure.step(), errorClass + "e", failure.message())),
                ok.withOwner(node + "o"));
        for (SagaInstance instance : refused) {
            boolean longId = instance.sagaId().length() > StoredKeys.MAX_SAGA_ID_LENGTH;
            SagaInstance inserted = copy(instance, longId ? instance.sagaId() : "s-2", 1);
            assertThrows(ConfigurationException.class, () -> insert(inserted), instance.toString());
            if (!longId) {
                SagaInstance next = copy(instance, "s-1", 2);
                assertThrows(ConfigurationException.class,
                        () -> store.update(next, transition(next, TransitionType.STEP_STARTED)), instance.toString());
            }
        }
        SagaInstance v2 = instance("s-1", "order-1", SagaStatus.RUNNING, T0, 2);
        assertThrows(ConfigurationException.class, () -> store.insert(copy(v2, "s-2", 1), new SagaTransition("s-2", 1,
                v2.updatedAt(), TransitionType.SAGA_STARTED, step + "p", 1, null)));
        assertThrows(ConfigurationException.class, () -> store.update(v2, new SagaTransition("s-1", 2,
                v2.updatedAt(), TransitionType.STEP_STARTED, step + "p", 1, null)));
        assertThrows(ConfigurationException.class,
                () -> store.update(v2, TransitionType.STEP_STARTED, step + "p", 1, null));
        assertEquals(ok.version(), store.find("s-1").orElseThrow().version(), "a refused write changes nothing");
        assertEquals(1, store.history("s-1").size());
        assertTrue(store.find("s-2").isEmpty(), "a refused write stores nothing");
        assertTrue(store.find(id + "s").isEmpty());
        if (store instanceof NodeRegistry registry) {
            registry.heartbeat(node, T0);
            assertThrows(ConfigurationException.class, () -> registry.heartbeat(node + "o", T0));
            assertEquals(Map.of(node, T0), registry.heartbeats());
        }
    }

    /**
     * An update of a saga the store does not hold is refused for a value no store holds as any such write is, with a
     * ConfigurationException, not a ConcurrentSagaUpdateException (which the engine reads as another writer having
     * moved or removed the saga): the refusal does not depend on whether the saga is still there.
     */
    @Test
    void anUpdateOfAnUnknownSagaHoldingAValueNoStoreHoldsIsRefusedForThatValueNotAsAConflict() {
        SagaInstance ghost = instance("ghost", null, SagaStatus.RUNNING, T0, 2);
        for (String bad : List.of("x\0y", "x\uD800y")) {
            List<SagaInstance> refused = List.of(
                    withFields(ghost, bad, "order-saga-data", null, List.of(), null),
                    withFields(ghost, "order-saga", bad, null, List.of(), null),
                    withFields(ghost, "order-saga", "order-saga-data", bad, List.of(), null),
                    withFields(ghost, "order-saga", "order-saga-data", null, List.of(StepState.pending(bad)), null),
                    withFields(ghost, "order-saga", "order-saga-data", null, List.of(),
                            new SagaFailure("create-order", bad, "boom")),
                    ghost.withOwner(bad));
            for (SagaInstance instance : refused) {
                assertThrows(ConfigurationException.class,
                        () -> store.update(instance, transition(instance, TransitionType.STEP_STARTED)), instance.toString());
                assertThrows(ConfigurationException.class,
                        () -> store.updateAll(instance, List.of(transition(instance, TransitionType.STEP_STARTED))),
                        instance.toString());
                assertThrows(ConfigurationException.class,
                        () -> store.update(instance, TransitionType.STEP_STARTED, null, 0, null), instance.toString());
            }
        }
        assertTrue(store.find("ghost").isEmpty());
    }

    private static SagaInstance copy(SagaInstance instance, String sagaId, long version) {
        return new SagaInstance(sagaId, instance.sagaName(), instance.definitionVersion(), instance.businessKey(),
                instance.dataType(), instance.data(), instance.status(), instance.steps(), instance.failure(),
                instance.compensationFailure(), instance.createdAt(), instance.createdAt().plusSeconds(version), version,
                instance.owner());
    }

    private static SagaInstance withFields(SagaInstance instance, String sagaName, String dataType, String businessKey,
                                           List<StepState> steps, SagaFailure failure) {
        return new SagaInstance(instance.sagaId(), sagaName, instance.definitionVersion(), businessKey, dataType,
                instance.data(), instance.status(), steps.isEmpty() ? instance.steps() : steps, failure, null,
                instance.createdAt(), instance.updatedAt(), instance.version(), instance.owner());
    }

    private static List<String> ids(List<SagaInstance> instances) {
        return instances.stream().map(SagaInstance::sagaId).toList();
    }
}
