package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md (aggregator): "the release is at-least-once", groups and deadlines live in the store so
 * "a group whose instance died still times out", and timed-out parts are released or dead-lettered. The
 * process dying right after the aggregator saved a group's closing, before the releaser ran or the parts
 * were dead-lettered, must not lose that outcome: a restarted aggregator over the same store finishes it.
 */
class AggregatorCrashTest {
    record Item(String orderId, int n) {
    }

    /** Stands for the process dying: not the message's fault, the bus lets it through as a crash would. */
    static final class ProcessDied extends Error {
        ProcessDied() {
            super("process died");
        }
    }

    /** A store whose process dies right after it saved a group the predicate selects (the save is durable). */
    static final class DyingStore implements AggregationStore {
        private final AggregationStore delegate;
        private volatile Predicate<AggregationGroup> dieAfterSaving = g -> false;

        DyingStore(AggregationStore delegate) {
            this.delegate = delegate;
        }

        @Override
        public Optional<AggregationGroup> find(String aggregator, String key) {
            return delegate.find(aggregator, key);
        }

        @Override
        public boolean save(AggregationGroup group) {
            boolean saved = delegate.save(group);
            if (saved && dieAfterSaving.test(group)) {
                dieAfterSaving = g -> false;
                throw new ProcessDied();
            }
            return saved;
        }

        @Override
        public boolean delete(String aggregator, String key, long version) {
            return delegate.delete(aggregator, key, version);
        }

        @Override
        public List<AggregationGroup> withDeadlines(String aggregator) {
            return delegate.withDeadlines(aggregator);
        }
    }

    /** The default lease of a release. */
    private static final Duration RELEASE_LEASE = Duration.ofMinutes(5);
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final InMemoryAggregationStore durable = new InMemoryAggregationStore();
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private EventAggregator.Builder aggregator(AggregationStore store) {
        return EventAggregator.builder(bus, store).name("items").correlateByField("orderId").onRelease(released::add);
    }

    private Message item(int n) {
        bus.publish("item", "o-1", new Item("o-1", n)).toCompletableFuture().join();
        List<Message> items = transport.messages("item");
        return items.get(items.size() - 1);
    }

    @Test
    void aCrashAfterTheCompletedGroupWasSavedReleasesItWhenItsLastPartIsRedeliveredAfterTheLeaseOfTheRelease() throws Exception {
        DyingStore dying = new DyingStore(durable);
        EventAggregator before = aggregator(dying).completeOnSize(2).build();
        before.accept(item(1));
        Message last = item(2);
        dying.dieAfterSaving = g -> g.state() == GroupState.RELEASING;
        assertThrows(ProcessDied.class, () -> before.accept(last)); // not acknowledged: the transport redelivers it
        before.close();
        assertTrue(released.isEmpty());
        scheduler.advance(RELEASE_LEASE); // the lease of the release that died with the process

        EventAggregator after = aggregator(durable).completeOnSize(2).build(); // the restarted process
        after.accept(last); // the redelivery of the part that completed the group

        assertEquals(1, released.size(), "the release of the completed group is at-least-once, not lost with the crash");
        assertEquals(2, released.get(0).group().size());
        after.accept(transport.messages("item").get(0)); // an earlier part, redelivered too
        assertEquals(1, released.size(), "only the part that completed the group releases it again");
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
        after.accept(last); // once the release is recorded, the completing part arriving again is a duplicate
        assertEquals(1, released.size());
    }

    @Test
    void aCompletingPartRedeliveredWithinTheLeaseOfACrashedReleaseIsTakenAndTheGroupIsReleasedOnceWhenTheLeasePassed() throws Exception {
        DyingStore dying = new DyingStore(durable);
        EventAggregator before = aggregator(dying).completeOnSize(2).build();
        before.accept(item(1));
        Message last = item(2);
        dying.dieAfterSaving = g -> g.state() == GroupState.RELEASING;
        assertThrows(ProcessDied.class, () -> before.accept(last));
        before.close();

        EventAggregator after = aggregator(durable).completeOnSize(2).build(); // restarted within the lease
        after.accept(last); // in the group: taken, neither refused nor dead-lettered
        assertTrue(released.isEmpty(), "the release may still run elsewhere until its lease passed: not released a second time meanwhile");

        scheduler.advance(RELEASE_LEASE); // the restarted process re-armed the group's deadline: the lease's end

        assertEquals(1, released.size(), "the crashed release is taken over, nothing lost");
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
        after.accept(last); // arriving again: a duplicate
        assertEquals(1, released.size());
    }

    @Test
    void aCompletingPartRedeliveredWithinTheLeaseToAnotherLiveInstanceIsTakenAndThatInstanceReleasesTheGroupWhenTheLeasePassed() throws Exception {
        EventAggregator survivor = aggregator(durable).completeOnSize(2).build(); // built before the crash: re-arms nothing
        DyingStore dying = new DyingStore(durable);
        EventAggregator before = aggregator(dying).completeOnSize(2).build();
        before.accept(item(1));
        Message last = item(2);
        dying.dieAfterSaving = g -> g.state() == GroupState.RELEASING;
        assertThrows(ProcessDied.class, () -> before.accept(last));
        before.close(); // never restarted: its partition moves to the survivor

        // the part is in the group, whose lease's end releases it: nothing for the bus to retry or dead-letter
        // (with a retry policy shorter than the lease, a refusal was dead-lettered, a misleading dead letter)
        survivor.accept(last);
        assertTrue(released.isEmpty(), "the release may still run elsewhere until its lease passed");

        scheduler.advance(RELEASE_LEASE); // the survivor armed the end of the lease as it took the part

        assertEquals(1, released.size(), "the crashed release is taken over, nothing lost");
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
        survivor.accept(last); // arriving again: a duplicate
        assertEquals(1, released.size());
        survivor.close();
    }

    /**
     * Dies once after saving RELEASING; the completing part's redelivery, once the lease of that release passed,
     * then finds a releaser that fails.
     */
    private Message crashWhileReleasing(EventAggregator.Builder before, DyingStore dying) throws Exception {
        EventAggregator dead = before.build();
        dead.accept(item(1));
        Message last = item(2);
        dying.dieAfterSaving = g -> g.state() == GroupState.RELEASING;
        assertThrows(ProcessDied.class, () -> dead.accept(last));
        dead.close();
        scheduler.advance(RELEASE_LEASE);
        return last;
    }

    @Test
    void aRedeliveredCompletingPartWhoseReleaseFailsUntilItIsDeadLetteredHasTheGroupReleasedWholeAtItsTimeout() throws Exception {
        DyingStore dying = new DyingStore(durable);
        Message last = crashWhileReleasing(aggregator(dying).completeOnSize(2)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL), dying);
        boolean[] failing = {true};
        EventAggregator after = aggregator(durable).completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL)
                .onRelease(aggregate -> {
                    if (failing[0]) {
                        throw new IllegalStateException("downstream unavailable");
                    }
                    released.add(aggregate);
                }).build();
        // the redelivered completing part and the bus's retries of it: each release fails, then it is dead-lettered
        assertThrows(IllegalStateException.class, () -> after.accept(last));
        assertThrows(IllegalStateException.class, () -> after.accept(last));
        failing[0] = false;

        scheduler.advance(Duration.ofHours(3)); // past the timeout and keepClosed (1 h)

        assertEquals(1, released.size(), "the group whose release failed is reopened and released at its timeout, not deleted unreleased");
        assertEquals(2, released.get(0).group().size());
        assertFalse(released.get(0).partial(), "the group is complete: released whole, not as a timed-out partial group");
    }

    @Test
    void aRedeliveredCompletingPartWhoseReleaseFailsUntilItIsDeadLetteredReleasesTheGroupWhenReplayed() throws Exception {
        DyingStore dying = new DyingStore(durable);
        Message last = crashWhileReleasing(aggregator(dying).completeOnSize(2), dying);
        boolean[] failing = {true};
        EventAggregator after = aggregator(durable).completeOnSize(2).onRelease(aggregate -> {
            if (failing[0]) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        }).build();
        assertThrows(IllegalStateException.class, () -> after.accept(last)); // redelivered, then dead-lettered
        failing[0] = false;

        after.accept(last); // replayed from the DLT (before the retry of the release), as on the normal path

        assertEquals(1, released.size(), "the group is still there, open with its parts, and the replayed part completes it");
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofHours(3)); // the retry the failed release scheduled finds it released
        assertEquals(1, released.size());
    }

    @Test
    void aRedeliveredCompletingPartWhoseReleaseFailsWithoutATimeoutIsReleasedByARetryWhenTheReplayNeverComes() throws Exception {
        DyingStore dying = new DyingStore(durable);
        Message last = crashWhileReleasing(aggregator(dying).completeOnSize(2), dying);
        boolean[] failing = {true};
        EventAggregator after = aggregator(durable).completeOnSize(2).onRelease(aggregate -> {
            if (failing[0]) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        }).build();
        assertThrows(IllegalStateException.class, () -> after.accept(last)); // redelivered, then dead-lettered
        failing[0] = false;

        scheduler.advance(Duration.ofHours(1)); // keepClosed (1 h): nobody replays the dead-lettered part

        assertEquals(1, released.size(), "the reopened group's release is retried, not left waiting for a replay");
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
    }

    @Test
    void aCrashDuringTheScheduledRetryOfAFailedReleaseStillReleasesTheGroupAfterTheRestart() throws Exception {
        DyingStore dying = new DyingStore(durable);
        boolean[] failing = {true};
        EventAggregator dead = aggregator(dying).completeOnSize(2).onRelease(aggregate -> {
            if (failing[0]) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        }).build();
        dead.accept(item(1));
        assertThrows(IllegalStateException.class, () -> dead.accept(item(2))); // reopened; its part then dead-lettered
        failing[0] = false;
        dying.dieAfterSaving = g -> g.state() == GroupState.RELEASING;
        // the scheduled retry of the release saves the group RELEASING, then the process dies: no part of it is
        // in flight any more to be redelivered
        assertThrows(ProcessDied.class, () -> scheduler.advance(Duration.ofSeconds(1)));
        dead.close();
        assertEquals(GroupState.RELEASING, durable.find("items", "o-1").orElseThrow().state());

        aggregator(durable).completeOnSize(2).build(); // the restarted process re-arms the group's deadline
        scheduler.advance(RELEASE_LEASE); // the lease of the release that died with the process

        assertEquals(1, released.size(), "a group left RELEASING is released, not deleted with its parts unreleased");
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.COMPLETED, durable.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofHours(3));
        assertEquals(1, released.size(), "released once");
    }

    @Test
    void aCrashAfterATimedOutGroupWasClosedStillDeadLettersItsPartsAfterTheRestart() throws Exception {
        DyingStore dying = new DyingStore(durable);
        EventAggregator before = aggregator(dying).completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER)
                .build();
        before.accept(item(1));
        before.accept(item(2));
        dying.dieAfterSaving = g -> !g.isOpen();
        assertThrows(ProcessDied.class, () -> scheduler.advance(Duration.ofMinutes(5)));
        before.close();
        assertEquals(0, transport.messages("item.DLT").size());

        aggregator(durable).completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).build();
        scheduler.advance(Duration.ofHours(3)); // past the timeout and the tombstone's keepClosed (1 h)

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(2, dead.size(), "the timed-out parts reach the DLT, not vanish with the crash");
        assertEquals("aggregation-timeout", dead.get(0).header(MessageHeaders.DLT_REASON).orElseThrow());
    }

    @Test
    void aCrashAfterATimedOutGroupWasClosedStillReleasesItPartiallyAfterTheRestart() throws Exception {
        DyingStore dying = new DyingStore(durable);
        EventAggregator before = aggregator(dying).completeOnSize(3)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        before.accept(item(1));
        dying.dieAfterSaving = g -> !g.isOpen();
        assertThrows(ProcessDied.class, () -> scheduler.advance(Duration.ofMinutes(5)));
        before.close();

        aggregator(durable).completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        scheduler.advance(Duration.ofHours(3));

        assertEquals(1, released.size(), "the partial release is at-least-once, not lost with the crash");
        assertTrue(released.get(0).partial());
        assertEquals(GroupState.TIMED_OUT_RELEASED, durable.find("items", "o-1").map(AggregationGroup::state)
                .orElse(GroupState.TIMED_OUT_RELEASED));
    }
    @Test
    void aTimeoutBeingFinishedByOneLiveInstanceIsNotFinishedAgainByAnotherInstanceOverTheSameStore() {
        // A second instance (its own scheduler, as in another process) shares the store and the transport; building
        // it re-armed the group's deadline, so its timer strikes while the first instance is releasing the group.
        VirtualScheduler otherScheduler = new VirtualScheduler();
        try (EventBus otherBus = EventBus.builder(transport).scheduler(otherScheduler)
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build()) {
            List<Aggregate> releasedByOther = new CopyOnWriteArrayList<>();
            EventAggregator first = EventAggregator.builder(bus, durable).name("items").correlateByField("orderId")
                    .completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL)
                    .onRelease(aggregate -> {
                        released.add(aggregate);
                        otherScheduler.advance(Duration.ofMinutes(5)); // the other instance's timer strikes meanwhile
                    }).build();
            first.accept(item(1));
            EventAggregator.builder(otherBus, durable).name("items").correlateByField("orderId").completeOnSize(3)
                    .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).onRelease(releasedByOther::add).build();

            scheduler.advance(Duration.ofMinutes(5));

            assertEquals(1, released.size());
            assertEquals(List.of(), releasedByOther,
                    "the live instance saved the timeout first and is finishing it: the group is released once");
            assertEquals(GroupState.TIMED_OUT_RELEASED, durable.find("items", "o-1").orElseThrow().state());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
    @Test
    void aTimeoutWhosePartialReleaseEndedWithAnErrorIsReleasedAgainOnceItsLeasePassedWithoutARestart() throws Exception {
        boolean[] failed = new boolean[1];
        aggregator(durable).completeOnSize(3).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL)
                .onRelease(aggregate -> {
                    if (!failed[0]) {
                        failed[0] = true;
                        throw new AssertionError("bug in the releaser");
                    }
                    released.add(aggregate);
                }).build().accept(item(1));
        assertThrows(AssertionError.class, () -> scheduler.advance(Duration.ofMinutes(5)));
        assertEquals(GroupState.TIMING_OUT, durable.find("items", "o-1").orElseThrow().state());

        scheduler.advance(Duration.ofMinutes(5)); // the lease of the instance that saved TIMING_OUT (releaseLease, 5 minutes by default)

        assertEquals(1, released.size(), "the timed-out group is not left TIMING_OUT until a restart");
        assertEquals(GroupState.TIMED_OUT_RELEASED, durable.find("items", "o-1").orElseThrow().state());
    }
}
