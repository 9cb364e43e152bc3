package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.RecoveryReport;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * docs/sagas.md, "Recovery with several nodes": a recovery ({@code recover()}, {@code recover(idleFor)}, a
 * {@code recoverEvery} sweep) reads from the store only the sagas it may resume, page by page: not those updated
 * within its {@code idleFor}, not those of the other live nodes with saga ownership, and never more than a page of
 * sagas (with their data) at once.
 */
class RecoveryReadsOnlyCandidatesTest {
    record Order(String id) {
    }

    static final class Crash extends SimulatedProcessCrash {
        Crash() {
            super("the node died");
        }
    }

    private static final Duration HEARTBEAT = Duration.ofSeconds(10);
    private static final Duration LEASE = Duration.ofSeconds(30);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final Set<String> dieOnce = ConcurrentHashMap.newKeySet();
    private final List<SagaOrchestrator> nodes = new ArrayList<>();

    @AfterEach
    void tearDown() {
        nodes.forEach(SagaOrchestrator::close);
    }

    private final SagaDefinition<Order> shipSaga = SagaDefinition.builder("ship-saga", Order.class)
            .step("ship").action((order, ctx) -> {
                if (dieOnce.remove(order.id())) {
                    throw new Crash();
                }
                return order;
            }).build();

    private SagaOrchestrator.Builder node(io.streamsaga.saga.spi.SagaStore over, VirtualScheduler clock) {
        return SagaOrchestrator.builder().store(over).scheduler(clock).register(shipSaga);
    }

    private SagaOrchestrator track(SagaOrchestrator node) {
        nodes.add(node);
        return node;
    }

    /** {@code node} starts the saga, whose first run dies with it: the saga stays RUNNING in the store. */
    private void crashIn(SagaOrchestrator node, String id) {
        dieOnce.add(id);
        assertThrows(Crash.class, () -> node.start(shipSaga, id, null, new Order(id)));
    }

    @Test
    void aRecoveryWithOwnershipReadsNeitherTheSagasOfLiveNodesNorTheirData() {
        SagaOrchestrator nodeA = track(node(store, scheduler).ownership("a", HEARTBEAT, LEASE).build());
        for (String id : List.of("a-1", "a-2", "a-3")) {
            crashIn(nodeA, id); // node A lives on: these stay its own
        }
        VirtualScheduler deadClock = new VirtualScheduler();
        crashIn(node(store, deadClock).ownership("d", HEARTBEAT, LEASE).build(), "d-1"); // node D dies with it
        scheduler.advance(LEASE);
        CountingStore counting = new CountingStore(store);
        SagaOrchestrator nodeB = track(node(counting, scheduler).ownership("b", HEARTBEAT, LEASE).build());

        RecoveryReport report = nodeB.recover();

        assertEquals(List.of("d-1"), report.resumed());
        assertEquals(List.of("d-1"), counting.handedOut, "node A's sagas are left out by the store");
        assertEquals(Set.of("a"), counting.queries.get(0).excludedOwners(), "node A is alive, node D is not");
        assertEquals(SagaStatus.COMPLETED, store.find("d-1").orElseThrow().status());
        assertEquals(SagaStatus.RUNNING, store.find("a-1").orElseThrow().status());
        deadClock.close();
    }

    @Test
    void aRecoverEverySweepReadsOnlyTheSagasIdleForItsIdleFor() {
        SagaOrchestrator nodeX = track(node(store, scheduler).build());
        crashIn(nodeX, "old");
        scheduler.advance(Duration.ofHours(2));
        crashIn(nodeX, "recent");
        CountingStore counting = new CountingStore(store);
        track(node(counting, scheduler).recoverEvery(Duration.ofMinutes(10), Duration.ofHours(1)).build());

        scheduler.advance(Duration.ofMinutes(10));

        assertEquals(List.of("old"), counting.handedOut, "the saga updated 10 minutes ago is left out by the store");
        assertEquals(scheduler.now().minus(Duration.ofHours(1)), counting.queries.get(0).updatedAtOrBefore());
        assertEquals(SagaStatus.COMPLETED, store.find("old").orElseThrow().status());
        assertEquals(SagaStatus.RUNNING, store.find("recent").orElseThrow().status());
    }

    @Test
    void aRecoveryOverManySagasHoldsAPageOfThemAtATime() {
        SagaOrchestrator nodeX = track(node(store, scheduler).build());
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 1001; i++) {
            String id = String.format("s-%04d", i);
            ids.add(id);
            crashIn(nodeX, id);
        }
        CountingStore counting = new CountingStore(store);
        SagaOrchestrator nodeY = track(node(counting, scheduler).build());

        RecoveryReport report = nodeY.recover();

        assertEquals(ids, report.resumed(), "all of them, oldest first");
        assertEquals(1001, counting.handedOut.size(), "each read once");
        assertEquals(List.of(500, 500, 1), counting.answers, "a page per read");
        assertEquals(0, store.findByStatus(Set.of(SagaStatus.RUNNING)).size());
    }

    @Test
    void aRecoveryOverAStoreThatIgnoresThePositionOfItsPagesEndsInsteadOfReadingTheFirstPageForEver() {
        SagaOrchestrator nodeX = track(node(store, scheduler).build());
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 501; i++) {
            String id = String.format("s-%04d", i);
            ids.add(id);
            crashIn(nodeX, id);
        }
        // An application's store that pages wrongly: always the first page, whatever position it is asked after.
        CountingStore firstPageOnly = new CountingStore(store) {
            @Override
            public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
                if (queries.size() == 10) {
                    throw new AssertionError("the recovery read the first page for ever");
                }
                return super.findRecoveryCandidates(new RecoveryQuery(query.updatedAtOrBefore(), query.excludedOwners(),
                        null, query.limit()));
            }
        };
        // A node without the definition: the sagas it reads stay unfinished, so the same first page comes back.
        SagaOrchestrator nodeY = track(SagaOrchestrator.builder().store(firstPageOnly).scheduler(scheduler).build());

        RecoveryReport report = nodeY.recover();

        assertEquals(ids.subList(0, 500), report.unresolvable(), "the first page, once");
        assertEquals(2, firstPageOnly.queries.size(), "the second answer repeated the first page: no third read");
    }

    @Test
    void aSweepReadsNoSagaDrivenHereOneByOneWhetherTheQueryLeftItOutAsRecentlyUpdatedOrReturnedIt() {
        SagaDefinition<Order> slowSaga = SagaDefinition.builder("slow-saga", Order.class)
                .step("book").asyncAction((order, ctx) -> new CompletableFuture<>()).build(); // never completes
        CountingStore counting = new CountingStore(store);
        SagaOrchestrator node = track(SagaOrchestrator.builder().store(counting).scheduler(scheduler).register(slowSaga)
                .recoverEvery(Duration.ofMinutes(10), Duration.ofHours(1)).build());
        for (String id : List.of("b-1", "b-2", "b-3")) {
            node.start(slowSaga, id, null, new Order(id));
        }

        scheduler.advance(Duration.ofMinutes(10)); // written 10 minutes ago: left out by the query
        assertEquals(List.of(), counting.handedOut);
        scheduler.advance(Duration.ofHours(1)); // idle for an hour now: in the query, and driven here
        assertEquals(List.of("b-1", "b-2", "b-3"), counting.handedOut.subList(0, 3));

        assertEquals(0, counting.finds.get(), "no read of a saga driven here, one by one");
        assertEquals(SagaStatus.RUNNING, store.find("b-1").orElseThrow().status());
    }

    /** The in-memory store (and registry), recording which sagas its queries of unfinished sagas hand out. */
    private static class CountingStore extends ForwardingSagaStore implements NodeRegistry {
        private final InMemorySagaStore registry;
        final List<String> handedOut = new CopyOnWriteArrayList<>();
        final List<Integer> answers = new CopyOnWriteArrayList<>();
        final List<RecoveryQuery> queries = new CopyOnWriteArrayList<>();
        final AtomicInteger finds = new AtomicInteger();

        CountingStore(InMemorySagaStore delegate) {
            super(delegate);
            this.registry = delegate;
        }

        private List<SagaInstance> counted(List<SagaInstance> answer) {
            answers.add(answer.size());
            answer.forEach(instance -> handedOut.add(instance.sagaId()));
            return answer;
        }

        @Override
        public Optional<SagaInstance> find(String sagaId) {
            finds.incrementAndGet();
            return delegate.find(sagaId);
        }

        @Override
        public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
            return counted(delegate.findByStatus(statuses));
        }

        @Override
        public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
            queries.add(query);
            return counted(delegate.findRecoveryCandidates(query));
        }

        @Override
        public void heartbeat(String nodeId, Instant at) {
            registry.heartbeat(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            return registry.heartbeats();
        }

        @Override
        public void remove(String nodeId) {
            registry.remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            return registry.remove(nodeId, at);
        }
    }
}
