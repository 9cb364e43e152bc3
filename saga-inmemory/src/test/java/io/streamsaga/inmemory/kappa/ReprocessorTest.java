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
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
            .scheduler(new VirtualScheduler()).build();
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
}
