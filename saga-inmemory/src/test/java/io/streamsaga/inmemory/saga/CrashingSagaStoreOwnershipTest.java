package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.CrashingSagaStore;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The test kit's CrashingSagaStore stands for a node of a cluster dying mid-saga: over a store that is a NodeRegistry it
 * is one too, so an orchestrator with saga ownership builds over it, and once it crashed it writes no heartbeat more
 * (a dead process), so another node adopts the saga after the lease, as docs/sagas.md ("Saga ownership") describes.
 */
class CrashingSagaStoreOwnershipTest {
    record Order(String id) {
    }

    private final List<String> effects = new CopyOnWriteArrayList<>();
    private final Set<String> applied = ConcurrentHashMap.newKeySet();

    private final SagaDefinition<Order> saga = SagaDefinition.builder("order-saga", Order.class)
            .step("reserve").action((d, ctx) -> { effects.add("reserve"); applied.add(ctx.idempotencyKey()); return d; })
            .step("charge").action((d, ctx) -> { effects.add("charge"); applied.add(ctx.idempotencyKey()); return d; })
            .step("ship").action((d, ctx) -> { effects.add("ship"); applied.add(ctx.idempotencyKey()); return d; })
            .build();

    @Test
    void aNodeWhoseStoreCrashesMidSagaStopsHeartbeatingAndAnotherNodeAdoptsTheSagaOnceAfterTheLease() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        CrashingSagaStore dying = new CrashingSagaStore(store, 3, true); // dies as it writes charge's outcome
        try (SagaOrchestrator a = SagaOrchestrator.builder().store(dying).scheduler(scheduler).register(saga)
                     .ownership("node-a", Duration.ofSeconds(10), Duration.ofSeconds(60)).build();
             SagaOrchestrator b = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga)
                     .ownership("node-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                     .recoverEvery(Duration.ofSeconds(30), Duration.ZERO).build()) {
            assertThrows(SimulatedCrash.class, () -> a.start(saga, "s-1", null, new Order("o-1")));
            assertEquals("node-a", store.find("s-1").orElseThrow().owner());
            assertEquals(List.of(), b.recover().resumed(), "node A's lease has not run out");

            scheduler.advance(Duration.ofSeconds(90)); // node A writes no heartbeat more; B's sweep after the lease adopts

            SagaInstance done = store.find("s-1").orElseThrow();
            assertEquals(SagaStatus.COMPLETED, done.status());
            assertEquals("node-b", done.owner());
            assertEquals(1, store.history("s-1").stream().map(SagaTransition::type)
                    .filter(TransitionType.SAGA_ADOPTED::equals).count());
            assertEquals(Set.of("s-1/reserve", "s-1/charge", "s-1/ship"), applied);
            assertEquals(List.of("reserve", "charge", "charge", "ship"), effects, "the step whose outcome was lost runs again");
            assertTrue(!store.heartbeats().containsKey("node-a"), "the dead node's heartbeat is removed by B's recovery");
        }
        scheduler.close();
    }

    @Test
    void aCrashedNodesCloseRemovesNoHeartbeatSoItsSagaWaitsForTheLeaseAsAfterADeadProcess() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        CrashingSagaStore dying = new CrashingSagaStore(store, 3, true);
        SagaOrchestrator a = SagaOrchestrator.builder().store(dying).scheduler(scheduler).register(saga)
                .ownership("node-a", Duration.ofSeconds(10), Duration.ofSeconds(60)).build();
        try (SagaOrchestrator b = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga)
                .ownership("node-b", Duration.ofSeconds(10), Duration.ofSeconds(60)).build()) {
            assertThrows(SimulatedCrash.class, () -> a.start(saga, "s-1", null, new Order("o-1")));
            Instant lastHeartbeat = store.heartbeats().get("node-a");
            scheduler.advance(Duration.ofSeconds(30)); // three of A's heartbeat intervals
            a.close(); // a graceful close would remove the heartbeat, and B would adopt at once

            assertEquals(lastHeartbeat, store.heartbeats().get("node-a"), "no heartbeat written or removed after the crash");
            assertEquals(List.of(), b.recover().resumed(), "node A's lease has not run out");
            scheduler.advance(Duration.ofSeconds(31));
            assertEquals(List.of("s-1"), b.recover().resumed());
            assertEquals(SagaStatus.COMPLETED, store.find("s-1").orElseThrow().status());
        }
        scheduler.close();
    }

    @Test
    void aCrashedNodeWithItsOwnRecoverySweepAndPurgeStopsThemInsteadOfThrowingTheCrashIntoTheTestsClock() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        CrashingSagaStore dying = new CrashingSagaStore(store, 3, true);
        // The nodes of a cluster configured alike: node A sweeps and purges too, on the clock the test advances.
        try (SagaOrchestrator a = SagaOrchestrator.builder().store(dying).scheduler(scheduler).register(saga)
                     .ownership("node-a", Duration.ofSeconds(10), Duration.ofSeconds(60))
                     .recoverEvery(Duration.ofSeconds(30), Duration.ZERO).purgeEvery(Duration.ofSeconds(30)).build();
             SagaOrchestrator b = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(saga)
                     .ownership("node-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                     .recoverEvery(Duration.ofSeconds(30), Duration.ZERO).purgeEvery(Duration.ofSeconds(30)).build()) {
            assertThrows(SimulatedCrash.class, () -> a.start(saga, "s-1", null, new Order("o-1")));

            scheduler.advance(Duration.ofSeconds(90)); // A's sweeps and purges read the crashed store: they stop

            SagaInstance done = store.find("s-1").orElseThrow();
            assertEquals(SagaStatus.COMPLETED, done.status());
            assertEquals("node-b", done.owner());
            assertEquals(List.of("reserve", "charge", "charge", "ship"), effects);
        }
        scheduler.close();
    }

    @Test
    void ownershipOverACrashingStoreWhoseDelegateIsNoNodeRegistryIsRefusedAtBuild() {
        InMemorySagaStore inMemory = new InMemorySagaStore();
        // An application's own store that is no NodeRegistry: the in-memory one seen through the SagaStore interface only.
        SagaStore notARegistry = (SagaStore) java.lang.reflect.Proxy.newProxyInstance(SagaStore.class.getClassLoader(),
                new Class<?>[] {SagaStore.class}, (proxy, method, args) -> method.invoke(inMemory, args));
        VirtualScheduler scheduler = new VirtualScheduler();
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder()
                .store(new CrashingSagaStore(notARegistry, 2)).scheduler(scheduler).register(saga)
                .ownership("node-a", Duration.ofSeconds(10), Duration.ofSeconds(60)).build());
        assertTrue(e.getMessage().contains("NodeRegistry") && e.getMessage().contains("the delegate of this CrashingSagaStore"),
                e.getMessage());
        scheduler.close();
    }
}
