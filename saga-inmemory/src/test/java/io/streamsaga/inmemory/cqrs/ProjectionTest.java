package io.streamsaga.inmemory.cqrs;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProjectionTest {
    record OrderCreated(String orderId, String userId, long amount) {
    }

    record OrderShipped(String orderId) {
    }

    record OrderView(String orderId, String userId, String userName, String status, long amount) {
    }

    /** A denormalised read model: the user's name is copied in, as in the source's OrderProjection. */
    static final class OrderReadModel {
        final Map<String, OrderView> orders = new ConcurrentHashMap<>();
    }

    static final Map<String, String> USERS = Map.of("u-1", "An", "u-2", "Binh");

    static ProjectionDefinition<OrderReadModel> definition() {
        return ProjectionDefinition.builder(OrderReadModel::new)
                .on("order-created", OrderCreated.class, (model, e, ctx) -> model.orders.put(e.orderId(),
                        new OrderView(e.orderId(), e.userId(), USERS.getOrDefault(e.userId(), "?"), "created", e.amount())))
                .on("order-shipped", OrderShipped.class, (model, e, ctx) -> model.orders.computeIfPresent(e.orderId(),
                        (id, v) -> new OrderView(id, v.userId(), v.userName(), "shipped", v.amount())))
                .build();
    }

    private static EventBus bus(InMemoryTransport transport) {
        return EventBus.builder(transport).types(TypeRegistry.builder()
                .register("order-created", 1, OrderCreated.class)
                .register("order-shipped", 1, OrderShipped.class).build()).scheduler(new VirtualScheduler()).build();
    }

    @Test
    void projectionDenormalisesEventsIntoTheReadModel() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport); Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition())) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100));
            bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-2", 200));
            transport.drainAll();
            bus.publish("order-shipped", "o-1", new OrderShipped("o-1"));
            transport.drainAll();

            assertEquals(new OrderView("o-1", "u-1", "An", "shipped", 100), projection.readModel().orders.get("o-1"));
            assertEquals("Binh", projection.readModel().orders.get("o-2").userName());
            assertEquals(1, projection.version());
        }
    }

    @Test
    void rebuildServesTheOldModelUntilCaughtUpThenSwitchesAndStopsTheOldVersion() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(4).deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport); Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition())) {
            for (int i = 0; i < 20; i++) {
                bus.publish("order-created", "o-" + i, new OrderCreated("o-" + i, "u-1", i));
            }
            transport.drainAll();
            OrderReadModel old = projection.readModel();

            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild();
            assertEquals(2, rebuild.version());
            assertSame(old, projection.readModel());
            assertEquals(0, rebuild.progress().done());
            assertEquals(20, rebuild.progress().total());
            assertThrows(ConfigurationException.class, projection::rebuild);

            transport.drainAll();

            assertTrue(rebuild.isSwapped());
            assertNotSame(old, projection.readModel());
            assertEquals(2, projection.version());
            assertEquals(20, projection.readModel().orders.size());
            // the old version no longer follows the log
            bus.publish("order-created", "o-x", new OrderCreated("o-x", "u-2", 1));
            transport.drainAll();
            assertEquals(21, projection.readModel().orders.size());
            assertEquals(20, old.orders.size());
        }
    }

    @Test
    void closingTheProjectionDuringARebuildFailsItsSwapInsteadOfLeavingItPendingForever() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition());
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100));
            transport.drainAll();
            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild();
            java.util.concurrent.CompletableFuture<OrderReadModel> swapped = rebuild.swapped().toCompletableFuture();

            projection.close();
            transport.drainAll();

            assertTrue(swapped.isDone(), "a rebuild stopped by close() never swaps: whoever waits for it must not wait forever");
            assertInstanceOf(java.util.concurrent.CancellationException.class,
                    assertThrows(java.util.concurrent.CompletionException.class, swapped::join).getCause());
            assertFalse(rebuild.isSwapped());
            assertEquals(1, projection.version());
        }
    }

    @Test
    void aClosedProjectionRefusesToStartOrRebuildInsteadOfLaunchingAVersionNothingWouldStop() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            Projection<OrderReadModel> started = Projection.<OrderReadModel>create(bus, "orders").start(definition());
            started.close();
            Projection<OrderReadModel> neverStarted = Projection.create(bus, "others");
            neverStarted.close();

            ConfigurationException rebuild = assertThrows(ConfigurationException.class, started::rebuild);
            assertTrue(rebuild.getMessage().contains("closed"), rebuild.getMessage());
            assertThrows(ConfigurationException.class, () -> started.rebuild(definition()));
            assertThrows(ConfigurationException.class, () -> neverStarted.start(definition()));

            assertTrue(io.streamsaga.kappa.Reprocessor.isUnused(transport, "orders.v2", definition().topics()),
                    "no version launched after close");
            assertTrue(io.streamsaga.kappa.Reprocessor.isUnused(transport, "others.v1", definition().topics()));
            assertEquals(1, started.version(), "queries still see the version they used");
        }
    }

    /** A definition whose handler blocks on the event of {@code orderId} until {@code release}, noting its thread. */
    private static ProjectionDefinition<OrderReadModel> blockingOn(String orderId, java.util.concurrent.CountDownLatch reached,
                                                                    java.util.concurrent.CountDownLatch release,
                                                                    java.util.concurrent.CountDownLatch interrupted,
                                                                    java.util.concurrent.atomic.AtomicReference<Thread> thread) {
        return ProjectionDefinition.builder(OrderReadModel::new)
                .on("order-created", OrderCreated.class, (model, e, ctx) -> {
                    if (e.orderId().equals(orderId)) {
                        thread.set(Thread.currentThread());
                        reached.countDown();
                        while (true) { // deaf to the interrupt of close(), as a handler in a blocking call may be
                            try {
                                release.await();
                                break;
                            } catch (InterruptedException ignored) {
                                interrupted.countDown();
                            }
                        }
                    }
                    model.orders.put(e.orderId(), new OrderView(e.orderId(), e.userId(), "?", "created", e.amount()));
                })
                .build();
    }

    @Test
    void closeRacingTheSwapOfARebuildStopsWithoutWaitingForTheSwapAndLeavesTheOldVersionServing() throws Exception {
        java.util.concurrent.CountDownLatch v1Reached = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v1Release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v1Interrupted = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v2Reached = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v2Release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<Thread> v2Thread = new java.util.concurrent.atomic.AtomicReference<>();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build(); EventBus bus = bus(transport)) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders")
                    .start(blockingOn("o-2", v1Reached, v1Release, v1Interrupted, new java.util.concurrent.atomic.AtomicReference<>()));
            projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(blockingOn("o-1", v2Reached, v2Release,
                    new java.util.concurrent.CountDownLatch(1), v2Thread)); // holds version 2 before it caught up
            assertTrue(v2Reached.await(30, TimeUnit.SECONDS));
            bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();
            assertTrue(v1Reached.await(30, TimeUnit.SECONDS)); // version 1 is busy in a handler

            java.util.concurrent.CompletableFuture<Void> closing = java.util.concurrent.CompletableFuture.runAsync(projection::close);
            assertTrue(v1Interrupted.await(30, TimeUnit.SECONDS)); // close() is stopping version 1
            v2Release.countDown(); // version 2 catches up now: its swap races the close
            java.util.concurrent.CompletableFuture<OrderReadModel> swapped = rebuild.swapped().toCompletableFuture();
            await().atMost(Duration.ofSeconds(30)).until(() -> swapped.isDone() || v2Thread.get().getState() == Thread.State.BLOCKED);
            v1Release.countDown();
            closing.get(60, TimeUnit.SECONDS);

            assertInstanceOf(java.util.concurrent.CancellationException.class,
                    assertThrows(java.util.concurrent.ExecutionException.class, () -> swapped.get(60, TimeUnit.SECONDS)).getCause(),
                    "a rebuild that caught up while the projection closed does not swap in a stopped version");
            assertFalse(rebuild.isSwapped());
            assertEquals(1, projection.version());
        }
    }

    @Test
    void rebuildUnderConcurrentQueriesNeverExposesAPartialReadModel() throws Exception {
        int initial = 3000;
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(4).build();
             EventBus bus = bus(transport);
             Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition())) {
            for (int i = 0; i < initial; i++) {
                bus.publish("order-created", "o-" + i, new OrderCreated("o-" + i, "u-1", i));
            }
            // the projection started before these events, so its own catch-up target was the empty log:
            // wait for the events themselves
            await().atMost(Duration.ofSeconds(30)).until(() -> projection.readModel().orders.size() == initial);

            AtomicBoolean running = new AtomicBoolean(true);
            AtomicLong smallestSeen = new AtomicLong(Long.MAX_VALUE);
            AtomicInteger queries = new AtomicInteger();
            Thread reader = new Thread(() -> {
                while (running.get()) {
                    smallestSeen.accumulateAndGet(projection.readModel().orders.size(), Math::min);
                    queries.incrementAndGet();
                }
            });
            reader.start();
            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild();
            for (int i = initial; i < initial + 200; i++) { // live traffic during the rebuild
                bus.publish("order-created", "o-" + i, new OrderCreated("o-" + i, "u-2", i));
            }
            rebuild.swapped().toCompletableFuture().get(30, TimeUnit.SECONDS);
            await().atMost(Duration.ofSeconds(30)).until(() -> projection.readModel().orders.size() == initial + 200);
            await().atMost(Duration.ofSeconds(30)).until(() -> queries.get() > 1000);
            running.set(false);
            reader.join();

            assertTrue(smallestSeen.get() >= initial, "a query saw a partial read model of " + smallestSeen.get());
            assertEquals(2, projection.version());
            assertFalse(projection.readModel().orders.isEmpty());
        }
    }

    @Test
    void restartedInMemoryProjectionStartsAtAnUnusedVersionAndReplaysEverything() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            Projection<OrderReadModel> first = Projection.<OrderReadModel>create(bus, "orders").start(definition());
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100));
            transport.drainAll();
            first.close();

            Projection<OrderReadModel> second = Projection.<OrderReadModel>create(bus, "orders").start(definition());
            transport.drainAll();
            assertEquals(2, second.version());
            assertEquals(1, second.readModel().orders.size());
            second.close();
        }
    }

    @Test
    void caughtUpToNowLetsAWriterReadItsOwnWritesWithoutPolling() throws Exception {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(4).build();
             EventBus bus = bus(transport);
             Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition())) {
            for (int i = 0; i < 50; i++) {
                bus.publish("order-created", "o-" + i, new OrderCreated("o-" + i, "u-1", i)).toCompletableFuture().join();
            }

            io.streamsaga.kappa.ReplayProgress applied = projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);

            assertEquals(50, applied.total());
            assertEquals(50, projection.readModel().orders.size(), "every write before the call is in the read model");
            // the shipping is read on a topic of its own, in no set order with order-created: shipped once o-7 is there
            bus.publish("order-shipped", "o-7", new OrderShipped("o-7")).toCompletableFuture().join();
            projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);
            assertEquals("shipped", projection.readModel().orders.get("o-7").status());
        }
    }

    @Test
    void caughtUpToNowDuringARebuildFollowsTheServingVersionNotTheOneBeingBuilt() throws Exception {
        java.util.concurrent.CountDownLatch v2Reached = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v2Release = new java.util.concurrent.CountDownLatch(1);
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build(); EventBus bus = bus(transport);
             Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition())) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);
            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(blockingOn("o-1", v2Reached, v2Release,
                    new java.util.concurrent.CountDownLatch(1), new java.util.concurrent.atomic.AtomicReference<>()));
            assertTrue(v2Reached.await(30, TimeUnit.SECONDS)); // version 2 is held before it caught up
            bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();

            projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);

            assertEquals(1, projection.version());
            assertTrue(projection.readModel().orders.containsKey("o-2"));
            v2Release.countDown();
            rebuild.swapped().toCompletableFuture().get(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRebuildSwappingOutTheServingVersionRetargetsItsPendingCaughtUpToNowToTheNewVersionAtTheOffsetsOfTheCall() throws Exception {
        // The swap failed a pending caughtUpToNow() with a CancellationException: a writer waiting to read its own
        // writes had to call again. It now waits on the version swapped in, for the same offsets (taken at the call),
        // which that version, replaying from the beginning, must reach too: version 2 swaps in at offset 1 (the end
        // at its start), the stage completes only once it applied o-2 (offset 1, below the end of 2 at the call).
        java.util.concurrent.CountDownLatch v1Reached = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v1Release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v2Reached = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch v2Release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<Thread> v2Thread = new java.util.concurrent.atomic.AtomicReference<>();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build(); EventBus bus = bus(transport)) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders")
                    .start(blockingOn("o-2", v1Reached, v1Release, new java.util.concurrent.CountDownLatch(1),
                            new java.util.concurrent.atomic.AtomicReference<>()));
            try {
                projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(blockingOn("o-1", v2Reached, v2Release,
                        new java.util.concurrent.CountDownLatch(1), v2Thread));
                assertTrue(v2Reached.await(30, TimeUnit.SECONDS)); // version 2 is held at o-1, before its target of 1
                bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();
                assertTrue(v1Reached.await(30, TimeUnit.SECONDS)); // version 1 is busy with o-2 in its handler
                java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> upToNow =
                        projection.caughtUpToNow().toCompletableFuture();
                // what the serving model holds when the stage completes, and which version that is
                java.util.concurrent.CompletableFuture<String> servingAtCompletion = upToNow.thenApply(progress ->
                        "v" + projection.version() + (projection.readModel().orders.containsKey("o-2") ? " with o-2" : " without o-2"));

                v2Release.countDown(); // version 2 reaches its start's end and swaps in before version 1 applied o-2
                // the swap stops version 1, whose handler is still in o-2: it waits for it, having moved the stage over
                await().atMost(Duration.ofSeconds(30)).until(() -> upToNow.isDone() || (projection.version() == 2
                        && v2Thread.get().getState() == Thread.State.TIMED_WAITING));
                assertFalse(upToNow.isDone(), "version 2 has not applied o-2 yet: " + upToNow);
                v1Release.countDown();

                io.streamsaga.kappa.ReplayProgress progress = upToNow.get(30, TimeUnit.SECONDS);
                assertEquals("v2 with o-2", servingAtCompletion.get(30, TimeUnit.SECONDS));
                assertEquals(Map.of("order-created", Map.of(0, 2L)), progress.target(), "the offsets taken at the call");
                assertTrue(progress.isComplete());
                assertTrue(rebuild.isSwapped());
            } finally {
                v1Release.countDown();
                v2Release.countDown();
                projection.close();
            }
        }
    }

    /**
     * A definition whose handler, at each event named in {@code holds}, counts down its first latch and waits for its
     * second (deaf to interrupts, as a handler in a blocking call may be), noting its thread in {@code thread}.
     */
    private static ProjectionDefinition<OrderReadModel> holdingAt(Map<String, java.util.concurrent.CountDownLatch[]> holds,
                                                                   java.util.concurrent.atomic.AtomicReference<Thread> thread) {
        return ProjectionDefinition.builder(OrderReadModel::new)
                .on("order-created", OrderCreated.class, (model, e, ctx) -> {
                    java.util.concurrent.CountDownLatch[] hold = holds.get(e.orderId());
                    if (hold != null) {
                        thread.set(Thread.currentThread());
                        hold[0].countDown();
                        boolean released = false;
                        while (!released) {
                            try {
                                released = hold[1].await(60, TimeUnit.SECONDS);
                            } catch (InterruptedException ignored) {
                                // deaf to the interrupt of close()
                            }
                        }
                    }
                    model.orders.put(e.orderId(), new OrderView(e.orderId(), e.userId(), "?", "created", e.amount()));
                })
                .build();
    }

    private static java.util.concurrent.CountDownLatch[] hold() {
        return new java.util.concurrent.CountDownLatch[] {new java.util.concurrent.CountDownLatch(1), new java.util.concurrent.CountDownLatch(1)};
    }

    @Test
    void aCaughtUpToNowMovedToTheVersionSwappedInStillFailsWithACancellationWhenTheProjectionCloses() throws Exception {
        java.util.concurrent.CountDownLatch[] v1AtO2 = hold();
        java.util.concurrent.CountDownLatch[] v2AtO1 = hold();
        java.util.concurrent.CountDownLatch[] v2AtO2 = hold();
        java.util.concurrent.atomic.AtomicReference<Thread> v2Thread = new java.util.concurrent.atomic.AtomicReference<>();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build(); EventBus bus = bus(transport)) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders")
                    .start(holdingAt(Map.of("o-2", v1AtO2), new java.util.concurrent.atomic.AtomicReference<>()));
            try {
                projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(holdingAt(Map.of("o-1", v2AtO1, "o-2", v2AtO2), v2Thread));
                assertTrue(v2AtO1[0].await(30, TimeUnit.SECONDS));
                bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();
                assertTrue(v1AtO2[0].await(30, TimeUnit.SECONDS));
                java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> upToNow =
                        projection.caughtUpToNow().toCompletableFuture();
                v2AtO1[1].countDown(); // version 2 swaps in; its close of version 1 waits for version 1's handler
                await().atMost(Duration.ofSeconds(30)).until(() -> upToNow.isDone() || (projection.version() == 2
                        && v2Thread.get().getState() == Thread.State.TIMED_WAITING));
                v1AtO2[1].countDown();
                rebuild.swapped().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertTrue(v2AtO2[0].await(30, TimeUnit.SECONDS)); // version 2 is in o-2's handler, not past it
                assertFalse(upToNow.isDone(), "waiting on version 2 for o-2: " + upToNow);

                java.util.concurrent.CompletableFuture<Void> closing = java.util.concurrent.CompletableFuture.runAsync(projection::close);

                assertInstanceOf(java.util.concurrent.CancellationException.class, assertThrows(
                        java.util.concurrent.ExecutionException.class, () -> upToNow.get(30, TimeUnit.SECONDS)).getCause(),
                        "a close still fails it, the version it moved to included");
                v2AtO2[1].countDown();
                closing.get(30, TimeUnit.SECONDS);
            } finally {
                v1AtO2[1].countDown();
                v2AtO1[1].countDown();
                v2AtO2[1].countDown();
                projection.close();
            }
        }
    }

    @Test
    void aCaughtUpToNowCalledAsARebuildSwapsOutTheVersionItReadWaitsOnTheVersionSwappedIn() throws Exception {
        // The call reads the serving version, then asks the transport for the end offsets: a swap meanwhile stops
        // that version before the call waits on it, which must move the stage over too, not fail it.
        java.util.concurrent.CountDownLatch[] v2AtO1 = hold();
        java.util.concurrent.CountDownLatch[] v2AtO2 = hold();
        InMemoryTransport transport = org.mockito.Mockito.spy(InMemoryTransport.builder().partitions(1).build());
        Thread caller = Thread.currentThread();
        java.util.concurrent.atomic.AtomicReference<Runnable> onEndOffsets = new java.util.concurrent.atomic.AtomicReference<>();
        org.mockito.Mockito.doAnswer(call -> {
            Runnable hook = Thread.currentThread() == caller ? onEndOffsets.getAndSet(null) : null;
            if (hook != null) {
                hook.run();
            }
            return call.callRealMethod();
        }).when(transport).endOffsets(org.mockito.ArgumentMatchers.anyString());
        try (transport; EventBus bus = bus(transport)) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders")
                    .start(holdingAt(Map.of(), new java.util.concurrent.atomic.AtomicReference<>()));
            try {
                projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(holdingAt(Map.of("o-1", v2AtO1, "o-2", v2AtO2),
                        new java.util.concurrent.atomic.AtomicReference<>()));
                assertTrue(v2AtO1[0].await(30, TimeUnit.SECONDS)); // version 2's target is 1: the end at its start
                bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();
                onEndOffsets.set(() -> { // version 1 read as serving: version 2 swaps in before the call waits on it
                    v2AtO1[1].countDown();
                    assertTrue(rebuild.swapped().toCompletableFuture().join() != null);
                });

                java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> upToNow =
                        projection.caughtUpToNow().toCompletableFuture();

                assertEquals(null, onEndOffsets.get(), "the swap ran inside the call");
                assertTrue(v2AtO2[0].await(30, TimeUnit.SECONDS));
                assertFalse(upToNow.isDone(), "version 2 has not applied o-2 yet: " + upToNow);
                v2AtO2[1].countDown();
                assertEquals(Map.of("order-created", Map.of(0, 2L)), upToNow.get(30, TimeUnit.SECONDS).target());
                assertEquals(2, projection.version());
                assertTrue(projection.readModel().orders.containsKey("o-2"));
            } finally {
                v2AtO1[1].countDown();
                v2AtO2[1].countDown();
                projection.close();
            }
        }
    }

    @Test
    void aCaughtUpToNowCompletedBeforeARebuildSwapsInDoesNotCoverTheVersionSwappedIn() throws Exception {
        // The stage covers the version serving when it completes: a rebuild started before the call swaps in at the
        // end offsets taken at its own start, so the version it brings may not have applied what the stage waited for.
        java.util.concurrent.CountDownLatch[] v2AtO1 = hold();
        java.util.concurrent.CountDownLatch[] v2AtO2 = hold();
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(1).build(); EventBus bus = bus(transport)) {
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100)).toCompletableFuture().join();
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders")
                    .start(holdingAt(Map.of(), new java.util.concurrent.atomic.AtomicReference<>()));
            try {
                projection.caughtUp().toCompletableFuture().get(30, TimeUnit.SECONDS);
                Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(holdingAt(Map.of("o-1", v2AtO1, "o-2", v2AtO2),
                        new java.util.concurrent.atomic.AtomicReference<>()));
                assertTrue(v2AtO1[0].await(30, TimeUnit.SECONDS)); // version 2's target is 1: the end at its start
                bus.publish("order-created", "o-2", new OrderCreated("o-2", "u-1", 200)).toCompletableFuture().join();
                projection.caughtUpToNow().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertEquals(1, projection.version());
                assertTrue(projection.readModel().orders.containsKey("o-2"));

                v2AtO1[1].countDown();
                rebuild.swapped().toCompletableFuture().get(30, TimeUnit.SECONDS);
                assertTrue(v2AtO2[0].await(30, TimeUnit.SECONDS)); // version 2 serves, still in o-2's handler

                assertEquals(2, projection.version());
                assertFalse(projection.readModel().orders.containsKey("o-2"), "the version swapped in has not applied o-2 yet");
                java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> again =
                        projection.caughtUpToNow().toCompletableFuture();
                assertFalse(again.isDone());
                v2AtO2[1].countDown();
                again.get(30, TimeUnit.SECONDS);
                assertTrue(projection.readModel().orders.containsKey("o-2"), "a call after the swap waits for it");
            } finally {
                v2AtO1[1].countDown();
                v2AtO2[1].countDown();
                projection.close();
            }
        }
    }

    @Test
    void closingTheProjectionFailsAPendingCaughtUpToNowAndALaterCallAtOnce() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = bus(transport)) {
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "orders").start(definition());
            bus.publish("order-created", "o-1", new OrderCreated("o-1", "u-1", 100));
            java.util.concurrent.CompletableFuture<io.streamsaga.kappa.ReplayProgress> pending =
                    projection.caughtUpToNow().toCompletableFuture();

            projection.close();

            assertInstanceOf(java.util.concurrent.CancellationException.class,
                    assertThrows(java.util.concurrent.CompletionException.class, pending::join).getCause());
            assertInstanceOf(java.util.concurrent.CancellationException.class, assertThrows(
                    java.util.concurrent.CompletionException.class, projection.caughtUpToNow().toCompletableFuture()::join).getCause());
        }
    }
}
