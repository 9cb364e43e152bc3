package io.streamsaga.contract;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The replay contract behind Kappa reprocessing, projection rebuilds and Lambda batch recomputes: on any
 * {@link Transport}, a {@link Reprocessor} replays topics from the beginning under new consumer groups, its
 * progress compares committed positions with the end offsets taken at its start, and a {@link Projection}
 * switches to a rebuilt version only once it caught up. A transport module extends this class and
 * implements {@link #createTransport()}; like {@link TransportContractTest} it uses fresh topic and group
 * names and waits (pumping) instead of assuming synchronous delivery.
 */
public abstract class ReplayContractTest {

    /** The event of the suite. */
    public record ReplayOrderPlaced(String orderId, long amount) {
    }

    private static final String TYPE = "replay-contract-order-placed";

    private Transport transport;
    private EventBus bus;

    /** A new transport under test. */
    protected abstract Transport createTransport();

    /** Delivers pending records when delivery is driven by the caller; nothing otherwise. */
    protected void pump() {
    }

    /** How long a test waits for deliveries. */
    protected Duration timeout() {
        return Duration.ofSeconds(30);
    }

    @BeforeEach
    void open() {
        transport = createTransport();
        bus = EventBus.builder(transport).types(TypeRegistry.builder().register(TYPE, 1, ReplayOrderPlaced.class).build()).build();
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    protected static String unique(String base) {
        return base + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private void eventually(Executable assertion) {
        await().atMost(timeout()).pollInterval(Duration.ofMillis(10)).pollInSameThread().untilAsserted(() -> {
            pump();
            try {
                assertion.execute();
            } catch (AssertionError | RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        });
    }

    private void publish(String topic, int from, int to) {
        for (int i = from; i < to; i++) {
            bus.publish(topic, "k-" + i, new ReplayOrderPlaced("o-" + i, i)).toCompletableFuture().join();
        }
    }

    @Test
    void replayReadsEverythingFromTheBeginningAndReportsProgressAgainstTheEndOffsets() {
        String topic = unique("orders");
        publish(topic, 0, 20);
        Set<String> seen = ConcurrentHashMap.newKeySet();
        Replay replay = Reprocessor.builder(bus).on(topic, ReplayOrderPlaced.class, (e, ctx) -> seen.add(e.orderId()))
                .build().start(unique("reprocess"));
        assertEquals(20, replay.progress().total());

        eventually(() -> assertTrue(replay.isCaughtUp()));
        assertEquals(20, seen.size());
        assertEquals(1.0, replay.progress().fraction());
        String group = replay.groups().get(topic);
        eventually(() -> assertEquals(transport.endOffsets(topic), transport.committedOffsets(group, topic)));
        assertTrue(transport.consumerGroups(topic).contains(group));
    }

    @Test
    void boundedReplayCoversOnlyWhatWasInTheLogAtItsStart() {
        String topic = unique("orders");
        publish(topic, 0, 5);
        Set<String> seen = ConcurrentHashMap.newKeySet();
        Replay replay = Reprocessor.builder(bus).mode(Reprocessor.Mode.UNTIL_TARGET)
                .on(topic, ReplayOrderPlaced.class, (e, ctx) -> seen.add(e.orderId())).build().start(unique("batch"));
        publish(topic, 5, 10);
        Set<String> witness = ConcurrentHashMap.newKeySet();
        Reprocessor.builder(bus).on(topic, ReplayOrderPlaced.class, (e, ctx) -> witness.add(e.orderId())).build().start(unique("witness"));

        eventually(() -> assertEquals(10, witness.size()));
        eventually(() -> assertTrue(replay.isCaughtUp()));
        assertEquals(Set.of("o-0", "o-1", "o-2", "o-3", "o-4"), seen);
        eventually(() -> assertFalse(replay.isActive()));
    }

    @Test
    void aReplayRefusesAGroupThatAlreadyReadTheTopic() {
        String topic = unique("orders");
        publish(topic, 0, 1);
        String group = unique("used");
        Replay first = Reprocessor.builder(bus).on(topic, ReplayOrderPlaced.class, (e, ctx) -> { }).build().start(group);
        eventually(() -> assertTrue(first.isCaughtUp()));
        assertThrows(ConfigurationException.class,
                () -> Reprocessor.builder(bus).on(topic, ReplayOrderPlaced.class, (e, ctx) -> { }).build().start(group));
    }

    @Test
    void rebuiltProjectionTakesOverOnlyAfterCatchingUpAndTheOldVersionStops() throws Exception {
        String topic = unique("orders");
        publish(topic, 0, 10);
        ProjectionDefinition<Map<String, Long>> definition = ProjectionDefinition.<Map<String, Long>>builder(ConcurrentHashMap::new)
                .on(topic, ReplayOrderPlaced.class, (model, e, ctx) -> model.put(e.orderId(), e.amount())).build();
        try (Projection<Map<String, Long>> projection = Projection.<Map<String, Long>>create(bus, unique("view")).start(definition)) {
            eventually(() -> assertEquals(10, projection.readModel().size()));
            Map<String, Long> old = projection.readModel();

            Projection.Rebuild<Map<String, Long>> rebuild = projection.rebuild();
            eventually(() -> assertTrue(rebuild.isSwapped()));
            assertEquals(2, projection.version());
            assertNotSame(old, projection.readModel());
            assertEquals(10, projection.readModel().size());

            publish(topic, 10, 11);
            eventually(() -> assertEquals(11, projection.readModel().size()));
            assertEquals(10, old.size());
        }
    }

    @Test
    void caughtUpToNowCompletesOnceTheProjectionAppliedEveryEventPublishedBeforeTheCallADeadLetteredOneIncluded() throws Exception {
        String topic = unique("orders");
        ProjectionDefinition<Map<String, Long>> definition = ProjectionDefinition.<Map<String, Long>>builder(ConcurrentHashMap::new)
                .on(topic, ReplayOrderPlaced.class, (model, e, ctx) -> {
                    if (e.amount() < 0) {
                        throw new IllegalArgumentException("a negative amount: " + e);
                    }
                    model.put(e.orderId(), e.amount());
                }).build();
        try (Projection<Map<String, Long>> projection = Projection.<Map<String, Long>>create(bus, unique("view")).start(definition)) {
            publish(topic, 0, 10);
            // the last event before the call is one the handler refuses: it is dead-lettered, and counts as applied
            bus.publish(topic, "k-poison", new ReplayOrderPlaced("o-poison", -1)).toCompletableFuture().join();

            java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> applied =
                    projection.caughtUpToNow().toCompletableFuture();
            waitFor(applied);

            assertEquals(10, projection.readModel().size(), "every event before the call is in the read model");
            assertEquals(11, applied.join().total());
            assertTrue(applied.join().isComplete());
            // with nothing published since, the next call has nothing to wait for
            assertTrue(projection.caughtUpToNow().toCompletableFuture().isDone());
        }
    }

    /** Waits for {@code stage}, pumping a caller-driven transport meanwhile. */
    private void waitFor(java.util.concurrent.CompletableFuture<?> stage) {
        eventually(() -> assertTrue(stage.isDone()));
        stage.join();
    }
}
