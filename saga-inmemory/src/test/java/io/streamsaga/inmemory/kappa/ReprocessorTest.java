package io.streamsaga.inmemory.kappa;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.ReplayProgress;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReprocessorTest {
    record OrderCreated(String orderId, long amount) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
            .scheduler(scheduler).build();
    private final List<String> seen = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private void publish(int from, int to) {
        for (int i = from; i < to; i++) {
            bus.publish("order-created", "k" + i, new OrderCreated("o-" + i, i));
        }
    }

    private Reprocessor reprocessor(Reprocessor.Mode mode) {
        return Reprocessor.builder(bus).mode(mode)
                .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId())).build();
    }

    @Test
    void replayReadsTheWholeTopicFromTheBeginningAndReportsProgressAgainstTheEnd() {
        publish(0, 12);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        assertEquals(12, replay.progress().total());
        assertEquals(0, replay.progress().done());
        assertFalse(replay.isCaughtUp());

        transport.drainAll();

        assertEquals(12, seen.size());
        assertTrue(replay.isCaughtUp());
        assertEquals(1.0, replay.progress().fraction());
        assertEquals(transport.endOffsets("order-created"), transport.committedOffsets("stats-v2.order-created", "order-created"));
        // FOLLOW goes on with live events
        publish(12, 14);
        transport.drainAll();
        assertEquals(14, seen.size());
    }

    @Test
    void aReplayAsksTheTransportForCommittedOffsetsOncePerPartitionReachingItsTargetNotOncePerRecord() {
        InMemoryTransport counted = org.mockito.Mockito.spy(
                InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build());
        EventBus countedBus = EventBus.builder(counted)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(new VirtualScheduler()).build();
        try {
            for (int i = 0; i < 300; i++) {
                countedBus.publish("order-created", "k" + i, new OrderCreated("o-" + i, i));
            }
            Replay replay = Reprocessor.builder(countedBus)
                    .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId())).build().start("stats-v2");
            org.mockito.Mockito.clearInvocations(counted);

            counted.drainAll();

            assertEquals(300, seen.size());
            assertTrue(replay.isCaughtUp());
            // at most one look per partition, when the records handled show it reached its target (was: one per record)
            org.mockito.Mockito.verify(counted, org.mockito.Mockito.atMost(3))
                    .committedOffsets(org.mockito.ArgumentMatchers.eq("stats-v2.order-created"), org.mockito.ArgumentMatchers.eq("order-created"));
        } finally {
            countedBus.close();
            counted.close();
        }
    }

    @Test
    void closingAReplayBeforeItCaughtUpCompletesCaughtUpExceptionallyInsteadOfNever() {
        publish(0, 5);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        java.util.concurrent.CompletableFuture<ReplayProgress> caughtUp = replay.caughtUp().toCompletableFuture();

        replay.close();

        assertTrue(caughtUp.isDone(), "a stopped replay never catches up: whoever waits for it must not wait forever");
        assertInstanceOf(java.util.concurrent.CancellationException.class,
                    assertThrows(java.util.concurrent.CompletionException.class, caughtUp::join).getCause());
        assertFalse(replay.isCaughtUp());
        transport.drainAll();
        assertTrue(seen.isEmpty());
    }

    @Test
    void boundedReplayCoversExactlyThePositionAtItsStartAndStops() {
        publish(0, 5);
        Replay replay = reprocessor(Reprocessor.Mode.UNTIL_TARGET).start("batch-1");
        publish(5, 9); // after the start: not covered
        transport.drainAll();

        assertEquals(5, seen.size());
        assertTrue(seen.containsAll(List.of("o-0", "o-1", "o-2", "o-3", "o-4")));
        assertTrue(replay.isCaughtUp());
        assertFalse(replay.isActive());
        assertEquals(5, replay.caughtUp().toCompletableFuture().join().done());
    }

    @Test
    void aGroupThatAlreadyReadTheTopicIsRefused() {
        publish(0, 2);
        reprocessor(Reprocessor.Mode.FOLLOW).start("v1");
        transport.drainAll();
        assertThrows(ConfigurationException.class, () -> reprocessor(Reprocessor.Mode.FOLLOW).start("v1"));
    }

    @Test
    void replayOfAnEmptyLogIsCaughtUpAtOnce() {
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("empty");
        assertTrue(replay.isCaughtUp());
        assertEquals(1.0, replay.progress().fraction());
    }

    @Test
    void aDeadLetteredLastRecordCompletesTheReplayWithoutAnyLaterRecordOrProgressCall() {
        publish(0, 3);
        Replay replay = Reprocessor.builder(bus).on("order-created", OrderCreated.class, (e, ctx) -> {
            if (e.orderId().equals("o-2")) {
                throw new IllegalStateException("poison");
            }
            seen.add(e.orderId());
        }).build().start("with-poison");
        transport.drainAll();

        assertTrue(replay.isCaughtUp()); // before progress() is asked: nothing else triggers a check
        assertEquals(List.of("o-2"), transport.messages("order-created.DLT").stream()
                .map(m -> ((OrderCreated) m.payload()).orderId()).toList());
        assertEquals(3, replay.progress().done());
    }

    @Test
    void anUndecodableLastRecordCompletesTheReplayOnceDeadLettered() {
        publish(0, 2);
        bus.publish(Message.builder("order-created").key("k9").type("order-created").version(1)
                .payload("{not json".getBytes(StandardCharsets.UTF_8)).build());
        Replay replay = reprocessor(Reprocessor.Mode.UNTIL_TARGET).start("with-garbage");
        transport.drainAll();

        assertTrue(replay.isCaughtUp());
        assertEquals(List.of("o-0", "o-1"), seen.stream().sorted().toList());
        assertEquals(1, transport.messages("order-created.DLT").size());
    }

    @Test
    void caughtUpToNowCompletesOnceEveryRecordPublishedBeforeTheCallIsHandledAndNotBefore() {
        publish(0, 6);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        transport.drainAll();
        publish(6, 10);

        java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();
        java.util.concurrent.CompletableFuture<Integer> seenAtCompletion = upToNow.thenApply(progress -> seen.size());
        publish(10, 12); // after the call: not waited for
        transport.drain(3);

        assertFalse(upToNow.isDone(), "a record published before the call is still pending");
        transport.drainAll();
        assertTrue(upToNow.isDone());
        assertEquals(10, upToNow.join().total());
        assertTrue(upToNow.join().isComplete());
        assertTrue(seenAtCompletion.join() >= 10, "the records before the call were applied when it completed");
        assertTrue(seen.containsAll(List.of("o-6", "o-7", "o-8", "o-9")));
    }

    @Test
    void caughtUpToNowWithNothingPendingCompletesAtOnceAlsoForPartitionsAndTopicsWithoutRecords() {
        publish(0, 1); // one of the three partitions has a record, two have none
        Replay replay = Reprocessor.builder(bus)
                .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId()))
                .on("never-published", OrderCreated.class, (e, ctx) -> seen.add(e.orderId()))
                .build().start("stats-v2");
        transport.drainAll();

        java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();

        assertTrue(upToNow.isDone(), "nothing was pending");
        assertEquals(1, upToNow.join().total());
        assertEquals(List.of("o-0"), seen);
    }

    @Test
    void aDeadLetteredRecordCountsAsAppliedSoCaughtUpToNowDoesNotWaitForItForever() {
        Replay replay = Reprocessor.builder(bus).on("order-created", OrderCreated.class, (e, ctx) -> {
            if (e.orderId().equals("o-2")) {
                throw new IllegalStateException("poison");
            }
            seen.add(e.orderId());
        }).build().start("with-poison");
        bus.publish("order-created", "same-key", new OrderCreated("o-1", 1));
        bus.publish("order-created", "same-key", new OrderCreated("o-2", 2)); // the last record before the call

        java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();
        transport.drainAll();

        assertTrue(upToNow.isDone(), "no record after the poison one, nor a progress() call, is needed");
        assertEquals(List.of("o-2"), transport.messages("order-created.DLT").stream()
                .map(m -> ((OrderCreated) m.payload()).orderId()).toList());
        assertEquals(List.of("o-1"), seen);
    }

    @Test
    void closingAReplayFailsItsPendingCaughtUpToNowWithACancellationAndALaterCallAtOnce() {
        publish(0, 5);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();

        replay.close();

        assertInstanceOf(java.util.concurrent.CancellationException.class,
                assertThrows(java.util.concurrent.CompletionException.class, upToNow::join).getCause());
        assertInstanceOf(java.util.concurrent.CancellationException.class, assertThrows(
                java.util.concurrent.CompletionException.class, replay.caughtUpToNow().toCompletableFuture()::join).getCause());
    }

    @Test
    void caughtUpToWaitsForPositionsTakenBeforeTheReplayStartedAndRefusesATopicItDoesNotRead() {
        publish(0, 6);
        java.util.Map<Integer, Long> earlier = transport.endOffsets("order-created");
        publish(6, 9);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");

        java.util.concurrent.CompletableFuture<ReplayProgress> upTo =
                replay.caughtUpTo(java.util.Map.of("order-created", earlier)).toCompletableFuture();
        assertFalse(upTo.isDone());
        transport.drainAll();

        assertTrue(upTo.isDone());
        assertEquals(6, upTo.join().total(), "against the positions given: " + upTo.join());
        assertTrue(replay.caughtUpTo(java.util.Map.of("order-created", earlier)).toCompletableFuture().isDone(),
                "already there: at once");
        ConfigurationException otherTopic = assertThrows(ConfigurationException.class,
                () -> replay.caughtUpTo(java.util.Map.of("order-shipped", java.util.Map.of(0, 1L))));
        assertTrue(otherTopic.getMessage().contains("'order-shipped'"), otherTopic.getMessage());
        ConfigurationException negative = assertThrows(ConfigurationException.class,
                () -> replay.caughtUpTo(java.util.Map.of("order-created", java.util.Map.of(0, -1L))));
        assertTrue(negative.getMessage().contains("0=-1"), negative.getMessage());
        assertThrows(ConfigurationException.class, () -> replay.caughtUpTo(null));
    }

    @Test
    void aBoundedReplayRefusesCaughtUpToNowAsItNeverAppliesWhatCameAfterItsStart() {
        Replay replay = reprocessor(Reprocessor.Mode.UNTIL_TARGET).start("batch-1");

        ConfigurationException refused = assertThrows(ConfigurationException.class, replay::caughtUpToNow);
        assertTrue(refused.getMessage().contains("UNTIL_TARGET"), refused.getMessage());
    }

    @Test
    void aPartitionAnotherMemberOfTheGroupHandlesCountsOnceItsCommittedOffsetReachesTheEndSeenByTheRecheck() {
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        // another instance of the same replay joins its group and takes some of the partitions
        io.streamsaga.bus.Subscription otherMember = transport.subscribe("stats-v2.order-created",
                io.streamsaga.bus.TopicPattern.of("order-created"), io.streamsaga.bus.StartPosition.EARLIEST, record -> { });
        try {
            publish(0, 12);
            java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();
            transport.drainAll();
            assertTrue(seen.size() < 12, "the other member handled some: " + seen);
            assertFalse(upToNow.isDone(), "what the other member handled shows only in the group's committed offsets");

            scheduler.advance(Duration.ofMillis(100));

            assertTrue(upToNow.isDone());
            assertEquals(12, upToNow.join().done());
        } finally {
            otherMember.close();
        }
    }

    @Test
    void aReplayWhoseLastPartitionsAnotherMemberHandledCatchesUpByTheRecheckOnceQuietAndTheRecheckThenStops() {
        // caughtUp was checked only when a record handled here took a partition to its target (or at a progress()
        // call): a target reached where no handler of this process passes (another member's partitions, on Kafka a
        // transaction's commit marker after the last record) left it pending on a quiet topic
        publish(0, 12);
        Replay replay = reprocessor(Reprocessor.Mode.FOLLOW).start("stats-v2");
        io.streamsaga.bus.Subscription otherMember = transport.subscribe("stats-v2.order-created",
                io.streamsaga.bus.TopicPattern.of("order-created"), io.streamsaga.bus.StartPosition.EARLIEST, record -> { });
        try {
            transport.drainAll();
            assertTrue(seen.size() < 12, "the other member handled some: " + seen);
            assertFalse(replay.isCaughtUp(), "what the other member handled shows only in the group's committed offsets");

            scheduler.advance(Duration.ofMillis(200)); // a run that finds records passed since the start, then a quiet one

            assertTrue(replay.isCaughtUp());
            assertEquals(12, replay.caughtUp().toCompletableFuture().join().done());
            assertEquals(0, scheduler.pendingTasks(), "the recheck stopped once caught up");
        } finally {
            otherMember.close();
        }
    }

    @Test
    void noRecheckOfCommittedOffsetsRunsOnceNoCaughtUpToNowIsPending() {
        InMemoryTransport counted = org.mockito.Mockito.spy(
                InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build());
        VirtualScheduler clock = new VirtualScheduler();
        EventBus countedBus = EventBus.builder(counted)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(clock).build();
        try {
            Replay replay = Reprocessor.builder(countedBus)
                    .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId())).build().start("stats-v2");
            countedBus.publish("order-created", "k", new OrderCreated("o-1", 1));
            java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();
            counted.drainAll();
            assertTrue(upToNow.isDone());
            clock.advance(Duration.ofMillis(100)); // the recheck armed while it was pending finds none and stops
            org.mockito.Mockito.clearInvocations(counted);

            clock.advance(Duration.ofSeconds(10));
            countedBus.publish("order-created", "k", new OrderCreated("o-2", 2));
            counted.drainAll();

            org.mockito.Mockito.verify(counted, org.mockito.Mockito.never()).committedOffsets(
                    org.mockito.ArgumentMatchers.anyString(), org.mockito.ArgumentMatchers.anyString());
            assertEquals(0, clock.pendingTasks(), "the recheck stopped");
        } finally {
            countedBus.close();
            counted.close();
        }
    }

    @Test
    void aReplayStillMovingMakesNoCommittedOffsetReadsOnItsRecheckOnlyAQuietRunDoes() {
        InMemoryTransport counted = org.mockito.Mockito.spy(
                InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build());
        VirtualScheduler clock = new VirtualScheduler();
        EventBus countedBus = EventBus.builder(counted)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(clock).build();
        try {
            for (int i = 0; i < 30; i++) { // one key: one partition, whose target is 30
                countedBus.publish("order-created", "k", new OrderCreated("o-" + i, i));
            }
            Replay replay = Reprocessor.builder(countedBus)
                    .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId())).build().start("stats-v2");
            org.mockito.Mockito.clearInvocations(counted);

            for (int tick = 0; tick < 20; tick++) { // a record handled between each two runs of the recheck
                counted.drain(1);
                clock.advance(Duration.ofMillis(100));
            }

            assertEquals(20, seen.size());
            org.mockito.Mockito.verify(counted, org.mockito.Mockito.never()).committedOffsets(
                    org.mockito.ArgumentMatchers.anyString(), org.mockito.ArgumentMatchers.anyString());
            assertFalse(replay.isCaughtUp());
            clock.advance(Duration.ofMillis(100)); // a run with no record passed since the last: it reads, once
            org.mockito.Mockito.verify(counted, org.mockito.Mockito.times(1)).committedOffsets("stats-v2.order-created", "order-created");
            assertEquals(1, clock.pendingTasks(), "not caught up: the recheck goes on");
        } finally {
            countedBus.close();
            counted.close();
        }
    }

    @Test
    void aReplaysCloseWaitsForTheCommittedOffsetRecheckRunningAndNoReadFollowsIt() throws Exception {
        InMemoryTransport watched = org.mockito.Mockito.spy(
                InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build());
        VirtualScheduler clock = new VirtualScheduler();
        EventBus watchedBus = EventBus.builder(watched)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(clock).build();
        java.util.concurrent.atomic.AtomicBoolean gated = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.CountDownLatch reading = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean closeReturned = new java.util.concurrent.atomic.AtomicBoolean();
        List<String> afterClose = new CopyOnWriteArrayList<>();
        org.mockito.Mockito.doAnswer(call -> {
            if (closeReturned.get()) {
                afterClose.add("a read of committed offsets started");
            }
            if (gated.getAndSet(false)) { // the recheck's read: it stays in it until released
                reading.countDown();
                release.await();
            }
            Object offsets = call.callRealMethod();
            if (closeReturned.get()) {
                afterClose.add("a read of committed offsets ended");
            }
            return offsets;
        }).when(watched).committedOffsets(org.mockito.ArgumentMatchers.anyString(), org.mockito.ArgumentMatchers.anyString());
        try {
            Replay replay = Reprocessor.builder(watchedBus)
                    .on("order-created", OrderCreated.class, (e, ctx) -> seen.add(e.orderId())).build().start("stats-v2");
            watchedBus.publish("order-created", "k", new OrderCreated("o-1", 1));
            java.util.concurrent.CompletableFuture<ReplayProgress> upToNow = replay.caughtUpToNow().toCompletableFuture();
            gated.set(true);
            Thread ticking = new Thread(() -> clock.advance(Duration.ofMillis(100))); // runs the recheck, on its thread
            ticking.start();
            assertTrue(reading.await(30, java.util.concurrent.TimeUnit.SECONDS), "the recheck reads committed offsets");

            Thread closer = new Thread(() -> {
                replay.close();
                closeReturned.set(true);
            });
            closer.start();
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> closer.getState() == Thread.State.TIMED_WAITING
                    || closer.getState() == Thread.State.WAITING || closer.getState() == Thread.State.TERMINATED);
            release.countDown();
            closer.join();
            ticking.join();
            clock.advance(Duration.ofSeconds(1));

            assertEquals(List.of(), afterClose, "the replay read committed offsets after its close() had returned");
            assertEquals(0, clock.pendingTasks(), "no recheck left queued");
            assertTrue(upToNow.isCompletedExceptionally());
        } finally {
            release.countDown();
            watchedBus.close();
            watched.close();
        }
    }
}
