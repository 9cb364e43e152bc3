package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOrchestrator.VersionGuard;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaVersionNotDeployedException;
import io.streamsaga.saga.spi.NodeRegistry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletionStage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Rolling deploys": with saga ownership, a node does not start a saga of a definition version that
 * another live node over the same store has not registered (it may take the saga's replies and would dead-letter
 * them): refused, fallen back to the newest version every live node has, or allowed ({@link VersionGuard}). The
 * nodes advertise their versions with their heartbeats; a node reads the others' with its own, on the virtual clock.
 */
class VersionGuardTest {
    record Order(String id) {
    }

    record OrderV2(String id, String currency) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private static final Duration HEARTBEAT = Duration.ofSeconds(10);
    private static final Duration LEASE = Duration.ofSeconds(30);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                    .build())
            .build();
    private final List<SagaOrchestrator> nodes = new ArrayList<>();

    private final SagaDefinition<Order> v1 = pay(1);
    private final SagaDefinition<Order> v2 = pay(2);
    private final SagaDefinition<OrderV2> v2WithNewData = SagaDefinition.builder("pay-saga", OrderV2.class).version(2)
            .dataType("pay-data-v2")
            .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
            .onReply(Charged.class, (order, reply) -> order)
            .build();

    @AfterEach
    void tearDown() {
        nodes.forEach(SagaOrchestrator::close);
        bus.close();
        transport.close();
    }

    /** A remote step: its reply may reach any node reading the reply topic. */
    private static SagaDefinition<Order> pay(int version) {
        return pay("pay-saga", version);
    }

    private static SagaDefinition<Order> pay(String name, int version) {
        return SagaDefinition.builder(name, Order.class).version(version).dataType("pay-data")
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .build();
    }

    /** Local steps only: no reply of it reaches another node. */
    private static SagaDefinition<Order> ship(int version) {
        return SagaDefinition.builder("ship-saga", Order.class).version(version).dataType("ship-data")
                .step("ship").action((order, ctx) -> order).build();
    }

    private SagaOrchestrator node(String nodeId, VirtualScheduler clock, VersionGuard guard,
                                  SagaDefinition<?>... definitions) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).bus(bus).scheduler(clock)
                .ownership(nodeId, HEARTBEAT, LEASE);
        for (SagaDefinition<?> definition : definitions) {
            builder.register(definition);
        }
        SagaOrchestrator node = (guard == null ? builder : builder.versionGuard(guard)).build();
        nodes.add(node);
        return node;
    }

    private SagaOrchestrator node(String nodeId, SagaDefinition<?>... definitions) {
        return node(nodeId, scheduler, null, definitions);
    }

    private int startedVersion(SagaOrchestrator node, String sagaId) {
        return node.find(sagaId).orElseThrow().definitionVersion();
    }

    @Test
    void withRefuseAVersionALiveNodeLacksIsRefusedStoringNothingAndStartsOnceThatNodeIsUpgraded() {
        SagaOrchestrator old = node("a", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.REFUSE, v1, v2);

        SagaVersionNotDeployedException refused = assertThrows(SagaVersionNotDeployedException.class,
                () -> upgraded.start(v2, "s-1", null, new Order("o-1")));
        assertEquals("pay-saga", refused.sagaName());
        assertEquals(2, refused.version());
        assertEquals(List.of("a"), refused.nodes());
        assertEquals(OptionalInt.of(1), refused.newestVersionOnEveryNode());
        assertTrue(refused.isRetriable());
        assertTrue(refused.getMessage().startsWith("saga 'pay-saga' version 2 is not started: live node(s) [a]"),
                refused.getMessage());
        assertTrue(upgraded.find("s-1").isEmpty(), "nothing stored");
        upgraded.start(v1, "s-2", null, new Order("o-2"));
        assertEquals(1, startedVersion(upgraded, "s-2"), "the version every node has starts");

        old.close(); // node a is upgraded: restarted under its id with both versions
        node("a", v1, v2);
        assertThrows(SagaVersionNotDeployedException.class, () -> upgraded.start(v2, "s-3", null, new Order("o-3")),
                "node b reads the others with its own heartbeat, not at each start");
        scheduler.advance(HEARTBEAT);
        upgraded.start(v2, "s-3", null, new Order("o-3"));
        assertEquals(2, startedVersion(upgraded, "s-3"));
    }

    @Test
    void aNodeStartedMidDeployKnowsTheOtherNodesVersionsBeforeItsFirstStart() {
        node("a", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.REFUSE, v1, v2); // its build read them

        assertThrows(SagaVersionNotDeployedException.class, () -> upgraded.start(v2, "s-1", null, new Order("o-1")));
    }

    @Test
    void aVersionLackedOnlyByANodeWhoseHeartbeatIsOlderThanTheLeaseStarts() {
        VirtualScheduler deadClock = new VirtualScheduler(); // node a's clock stops with it: no heartbeat after build
        node("a", deadClock, null, v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.REFUSE, v1, v2);

        scheduler.advance(LEASE.minus(HEARTBEAT)); // node a's last heartbeat is within the lease at b's heartbeat
        assertThrows(SagaVersionNotDeployedException.class, () -> upgraded.start(v2, "s-1", null, new Order("o-1")));
        scheduler.advance(HEARTBEAT); // b's heartbeat at the lease: a's is that old, a dead node
        upgraded.start(v2, "s-1", null, new Order("o-1"));
        assertEquals(2, startedVersion(upgraded, "s-1"));
        deadClock.close();
    }

    @Test
    void aSingleNodeStartsEveryVersionItHas() {
        SagaOrchestrator only = node("a", v1, v2);

        only.start(v2, "s-1", null, new Order("o-1"));
        only.start(v1, "s-2", null, new Order("o-2"));
        assertEquals(List.of(2, 1), List.of(startedVersion(only, "s-1"), startedVersion(only, "s-2")));
    }

    @Test
    void withOwnershipTheDefaultStartsTheNewestVersionEveryLiveNodeHasAndTheGivenOneOnceThatNodeIsUpgraded() {
        List<Integer> startedVersions = new ArrayList<>();
        SagaOrchestrator old = node("a", v1);
        SagaOrchestrator upgraded = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(v1).register(v2).ownership("b", HEARTBEAT, LEASE)
                .listener(new SagaListener() {
                    @Override
                    public void onStarted(SagaInstance instance) {
                        startedVersions.add(instance.definitionVersion());
                    }
                })
                .build();
        nodes.add(upgraded);

        upgraded.start(v2, "s-1", null, new Order("o-1"));
        upgraded.start(v2, "s-2", null, new Order("o-2"));
        assertEquals(List.of(1, 1), List.of(startedVersion(upgraded, "s-1"), startedVersion(upgraded, "s-2")),
                "version 1 while node a lacks version 2");
        old.close(); // node a is upgraded
        node("a", v1, v2);
        scheduler.advance(HEARTBEAT);
        upgraded.start(v2, "s-3", null, new Order("o-3"));
        assertEquals(2, startedVersion(upgraded, "s-3"));
        assertEquals(List.of(1, 1, 2), startedVersions, "a listener hears the version each saga started under");
    }

    @Test
    void aCallerReadsWhichVersionStartedFromTheInstance() {
        node("orders-a", v1);
        SagaDefinition<Order> payV1 = v1;
        SagaDefinition<Order> payV2 = v2;
        Order order = new Order("o-1");
        // docs/sagas.md, "Versions"
        SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(store)
                .bus(bus)
                .register(payV1).register(payV2)                    // this release has both versions
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                .build();
        orchestrator.start(payV2, "order-o-1", null, order);  // version 1 while a live node lacks version 2
        int started = orchestrator.find("order-o-1").orElseThrow().definitionVersion();
        nodes.add(orchestrator);

        assertEquals(1, started);
    }

    @Test
    void fallBackStartsTheNewestVersionEveryLiveNodeHasInsteadWhenItsDataClassIsTheSame() {
        node("a", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.FALL_BACK, v1, v2);

        upgraded.start(v2, "s-1", null, new Order("o-1"));
        assertEquals(1, startedVersion(upgraded, "s-1"), "started under version 1, which node a has");
    }

    @Test
    void aStartFallenBackToAnOlderVersionGivesAResultNamingThatVersion() {
        // node a, of the earlier release: only its heartbeat, so that every reply reaches node b, which sent the command
        store.heartbeat("a", scheduler.clock().instant(), Map.of("pay-saga", Set.of(1)));
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.FALL_BACK, v1, v2);
        List<Message> commands = new ArrayList<>();
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));

        CompletionStage<SagaResult<Order>> result = upgraded.start(v2, "s-1", null, new Order("o-1"));
        transport.drainAll();
        SagaMessages.reply(bus, commands.get(0), new Charged("ch-1"));
        transport.drainAll();

        assertTrue(result.toCompletableFuture().isDone(), "the reply completed the saga");
        assertEquals(1, result.toCompletableFuture().join().definitionVersion(), "version 2 was given, 1 started");
        assertTrue(result.toCompletableFuture().join().isCompleted());
    }

    @Test
    void fallBackRefusesWhenTheVersionEveryLiveNodeHasTakesOtherData() {
        node("a", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.FALL_BACK, v1, v2WithNewData);

        SagaVersionNotDeployedException refused = assertThrows(SagaVersionNotDeployedException.class,
                () -> upgraded.start(v2WithNewData, "s-1", null, new OrderV2("o-1", "EUR")));
        assertEquals(OptionalInt.of(1), refused.newestVersionOnEveryNode());
        assertTrue(refused.getMessage().endsWith("(not fallen back to: its data class is " + Order.class.getName()
                + ", not " + OrderV2.class.getName() + ")"), refused.getMessage());
    }

    @Test
    void fallBackRefusesWhenNoVersionIsOnEveryLiveNode() {
        node("a", ship(1)); // local sagas only: it reads no reply, and advertises nothing
        node("c", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.FALL_BACK, v2);

        SagaVersionNotDeployedException refused = assertThrows(SagaVersionNotDeployedException.class,
                () -> upgraded.start(v2, "s-1", null, new Order("o-1")));
        assertEquals(List.of("c"), refused.nodes(), "node a reads no reply: not counted");
        assertEquals(OptionalInt.empty(), refused.newestVersionOnEveryNode(), "version 1 is not registered here");
    }

    @Test
    void allowStartsAVersionAnotherLiveNodeLacksAsWithoutTheGuard() {
        node("a", v1);
        SagaOrchestrator upgraded = node("b", scheduler, VersionGuard.ALLOW, v1, v2);

        upgraded.start(v2, "s-1", null, new Order("o-1"));
        assertEquals(2, startedVersion(upgraded, "s-1"));
    }

    @Test
    void aSagaWithoutARemoteStepStartsWhateverTheOtherNodesHave() {
        node("a", v1, ship(1));
        SagaOrchestrator upgraded = node("b", v1, ship(1), ship(2));

        upgraded.start(ship(2), "s-1", null, new Order("o-1"));
        assertEquals(2, startedVersion(upgraded, "s-1"));
    }

    @Test
    void aSagaNameALiveNodeDoesNotKnowAtAllIsRefused() {
        node("a", v1);
        SagaDefinition<Order> refund = pay("refund-saga", 1); // a saga the new release adds
        SagaOrchestrator upgraded = node("b", v1, refund);

        SagaVersionNotDeployedException refused = assertThrows(SagaVersionNotDeployedException.class,
                () -> upgraded.start(refund, "s-1", null, new Order("o-1")));
        assertEquals(List.of("a"), refused.nodes());
    }

    @Test
    void aSagaEachNodeRegistersAtItsFirstStartIsRefusedThereUntilTheNodesHaveAdvertisedItThenStarts() {
        SagaDefinition<Order> refund = pay("refund-saga", 1); // registered with no builder: at its first start
        SagaOrchestrator a = node("a", scheduler, VersionGuard.REFUSE, v1);
        SagaOrchestrator b = node("b", scheduler, VersionGuard.REFUSE, v1);
        scheduler.advance(HEARTBEAT); // a reads b, which started after it

        assertThrows(SagaVersionNotDeployedException.class, () -> a.start(refund, "s-1", null, new Order("o-1")));
        assertThrows(SagaVersionNotDeployedException.class, () -> b.start(refund, "s-2", null, new Order("o-2")));
        // each advertises it with its next heartbeat; the node whose heartbeat ran first reads the other's at its next
        scheduler.advance(HEARTBEAT.multipliedBy(2));
        a.start(refund, "s-1", null, new Order("o-1"));
        b.start(refund, "s-2", null, new Order("o-2"));
        assertEquals(List.of(1, 1), List.of(startedVersion(a, "s-1"), startedVersion(b, "s-2")));
    }

    @Test
    void aNodeWhoseHeartbeatAdvertisesNothingIsNotCounted() {
        store.heartbeat("earlier-release", scheduler.clock().instant()); // a node of a release that does not advertise
        SagaOrchestrator upgraded = node("b", v1, v2);

        upgraded.start(v2, "s-1", null, new Order("o-1"));
        assertEquals(2, startedVersion(upgraded, "s-1"));
        assertEquals(Map.of("pay-saga", Set.of(1, 2)), store.nodes().get("b").definitions(), "what b advertises");
    }

    @Test
    void aCallerRefusedAVersionStartsTheOneEveryLiveNodeHas() {
        node("orders-a", v1);
        SagaDefinition<Order> payV1 = v1;
        SagaDefinition<Order> payV2 = v2;
        Order order = new Order("o-1");
        // docs/sagas.md, "Rolling deploys"
        SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(store)
                .bus(bus)
                .register(payV1).register(payV2)                    // this release has both versions
                .ownership("orders-b", Duration.ofSeconds(10), Duration.ofSeconds(60))
                .versionGuard(SagaOrchestrator.VersionGuard.REFUSE) // refuse rather than fall back
                .build();
        nodes.add(orchestrator);
        CompletionStage<SagaResult<Order>> result;
        try {
            result = orchestrator.start(payV2, order);
        } catch (SagaVersionNotDeployedException e) {           // a live node has not registered version 2 yet
            result = orchestrator.start(payV1, order);
        }

        assertFalse(result.toCompletableFuture().isDone(), "the saga waits for its reply");
        assertEquals(List.of(1), orchestrator.findByStatus(SagaStatus.RUNNING).stream()
                .map(SagaInstance::definitionVersion).toList());
    }

    @Test
    void aBuildThatCannotReadWhatTheOtherNodesAdvertiseFailsAndLeavesNoHeartbeat() {
        // the registry's read of the nodes fails (the database went away between two statements, say)
        class UnreadableNodes extends ForwardingSagaStore implements NodeRegistry {
            UnreadableNodes() {
                super(store);
            }

            @Override
            public void heartbeat(String nodeId, Instant at) {
                store.heartbeat(nodeId, at);
            }

            @Override
            public void heartbeat(String nodeId, Instant at, Map<String, Set<Integer>> definitions) {
                store.heartbeat(nodeId, at, definitions);
            }

            @Override
            public Map<String, NodeRegistry.NodeHeartbeat> nodes() {
                throw new IllegalStateException("the registry cannot be read");
            }

            @Override
            public Map<String, Instant> heartbeats() {
                return store.heartbeats();
            }

            @Override
            public void remove(String nodeId) {
                store.remove(nodeId);
            }

            @Override
            public boolean remove(String nodeId, Instant at) {
                return store.remove(nodeId, at);
            }
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SagaOrchestrator.builder()
                .store(new UnreadableNodes()).bus(bus).scheduler(scheduler).register(v1)
                .ownership("a", HEARTBEAT, LEASE).build());

        assertEquals("the registry cannot be read", e.getMessage());
        assertEquals(Map.of(), store.heartbeats(), "a node that did not start keeps no other node from its sagas");
    }

    @Test
    void aVersionGuardWithoutOwnershipIsRefusedAtBuild() {
        ConfigurationException refused = assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder()
                .store(store).bus(bus).scheduler(scheduler).register(v1).versionGuard(VersionGuard.FALL_BACK).build());
        assertTrue(refused.getMessage().startsWith("versionGuard(FALL_BACK) needs ownership(...)"), refused.getMessage());
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().versionGuard(null));
    }
}
