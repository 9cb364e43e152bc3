package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.codec.UnknownEventTypeException;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md (aggregator): "A releaser that throws reopens the group and the bus retries the part, which
 * completes the group again". A group released after failed releases is one completed group.
 */
class AggregatorReleaseFailureTest {
    record Item(String orderId, int n) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final InMemoryMetrics metrics = new InMemoryMetrics();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).metrics(metrics)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final InMemoryAggregationStore store = new InMemoryAggregationStore();
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();
    private final AtomicBoolean failing = new AtomicBoolean(true);

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private EventAggregator.Builder aggregator() {
        return EventAggregator.builder(bus, store).name("items").correlateByField("orderId").onRelease(aggregate -> {
            if (failing.get()) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        });
    }

    private Message item(int n) {
        bus.publish("item", "o-1", new Item("o-1", n)).toCompletableFuture().join();
        List<Message> items = transport.messages("item");
        return items.get(items.size() - 1);
    }

    private long completed() {
        return metrics.counter(EventAggregator.GROUPS_METRIC, Map.of("aggregator", "items", "outcome", "completed"));
    }

    @Test
    void aGroupReleasedAfterAFailedReleaseCountsAsOneCompletedGroup() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2).build();
        aggregator.accept(item(1));
        Message last = item(2);
        assertThrows(IllegalStateException.class, () -> aggregator.accept(last)); // released, the releaser threw
        assertEquals(0, completed(), "a group whose release failed is not completed (it is open again)");
        failing.set(false);

        aggregator.accept(last); // the bus's retry of the part completes and releases the reopened group

        assertEquals(1, released.size());
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(1, completed(), "one group completed once, however many releases it took");
        aggregator.close();
    }

    @Test
    void aFailedReleaseWithoutATimeoutIsRetriedOnTheSchedulerWhenItsPartIsNotRetried() throws Exception {
        AtomicInteger attempts = new AtomicInteger();
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).keepClosed(Duration.ofHours(1)).onRelease(aggregate -> {
                    attempts.incrementAndGet();
                    if (failing.get()) {
                        throw new IllegalStateException("downstream unavailable");
                    }
                    released.add(aggregate);
                }).build();
        aggregator.accept(item(1));
        assertThrows(IllegalStateException.class, () -> aggregator.accept(item(2))); // its retries then ran out

        scheduler.advance(Duration.ofDays(7)); // the downstream stays down for a week: retried meanwhile
        assertTrue(attempts.get() > 2, "the release is retried, not left waiting for a replay: " + attempts.get());
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state());
        failing.set(false);
        scheduler.advance(Duration.ofHours(1)); // retries are at most keepClosed apart

        assertEquals(1, released.size(), "the group is released once the releaser works again");
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(1, completed());
        scheduler.advance(Duration.ofDays(1));
        assertEquals(1, released.size(), "released once");
        aggregator.close();
    }

    private long counted(String outcome) {
        return metrics.counter(EventAggregator.GROUPS_METRIC, Map.of("aggregator", "items", "outcome", outcome));
    }

    @Test
    void aCompleteGroupWhoseReleaseFailedIsReleasedWholeAtItsTimeoutNotDeadLettered() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).build();
        aggregator.accept(item(1));
        assertThrows(IllegalStateException.class, () -> aggregator.accept(item(2))); // its retries then ran out

        scheduler.advance(Duration.ofMinutes(5)); // the timeout: the downstream is still down

        assertEquals(0, transport.messages("item.DLT").size(), "a complete group is not timed out: its release is retried");
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state(), "reopened for the next retry");
        failing.set(false);
        scheduler.advance(Duration.ofMinutes(5)); // the next retry, one timeout later

        assertEquals(1, released.size());
        assertFalse(released.get(0).partial(), "released whole: only its release had failed");
        assertEquals(2, released.get(0).group().size());
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(0, transport.messages("item.DLT").size());
        assertEquals(1, completed());
        assertEquals(0, counted("timed-out-dead-lettered"));
        aggregator.close();
    }

    @Test
    void aCompleteGroupWhoseReleaseFailedIsReleasedWholeAtItsTimeoutNotAsAPartialGroup() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        aggregator.accept(item(1));
        assertThrows(IllegalStateException.class, () -> aggregator.accept(item(2))); // its retries then ran out
        failing.set(false);

        scheduler.advance(Duration.ofMinutes(5));

        assertEquals(1, released.size());
        assertFalse(released.get(0).partial(), "a complete group is never reported as a partial one");
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(1, completed());
        assertEquals(0, counted("timed-out-released"));
        scheduler.advance(Duration.ofHours(2));
        assertEquals(1, released.size(), "released once");
        aggregator.close();
    }

    /**
     * An aggregator (timeout 5 minutes, keepClosed 1 hour) whose release throws {@code error} each time, counted in
     * {@code attempts}, given both parts of the group o-1: the completing part's retries ran out.
     */
    private EventAggregator withAReleaseThrowing(Supplier<RuntimeException> error, AtomicInteger attempts) throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL)
                .keepClosed(Duration.ofHours(1)).onRelease(aggregate -> {
                    attempts.incrementAndGet();
                    throw error.get();
                }).build();
        aggregator.accept(item(1));
        assertThrows(IllegalStateException.class, () -> aggregator.accept(item(2))); // its retries then ran out
        return aggregator;
    }

    @Test
    void aCompleteGroupWhoseReleaseKeepsFailingIsDeadLetteredWithTheReleasesErrorAfterKeepClosed() throws Exception {
        AtomicInteger attempts = new AtomicInteger();
        EventAggregator aggregator = withAReleaseThrowing(
                () -> new IllegalStateException("poison: " + "x".repeat(500)), attempts);

        scheduler.advance(Duration.ofMinutes(30)); // still retried, every timeout
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state());
        assertEquals(0, transport.messages("item.DLT").size());
        scheduler.advance(Duration.ofMinutes(35)); // keepClosed since the group completed: given up

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(2, dead.size(), "every part of the group dead-lettered, nothing lost");
        for (Message letter : dead) {
            assertEquals("aggregation-release-failed", letter.headers().get(io.streamsaga.message.MessageHeaders.DLT_REASON));
            String error = letter.headers().get(io.streamsaga.message.MessageHeaders.DLT_ERROR_MESSAGE);
            assertTrue(error.contains("IllegalStateException: poison: " + "x".repeat(500)), "the error whole: " + error);
        }
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(1, counted("release-failed-dead-lettered"));
        assertEquals(0, released.size());
        int tried = attempts.get();
        scheduler.advance(Duration.ofHours(3));
        assertEquals(tried, attempts.get(), "a poison group is not retried for ever");
        assertTrue(store.find("items", "o-1").isEmpty(), "its tombstone leaves the store after keepClosed");
        assertEquals(2, transport.messages("item.DLT").size());
        aggregator.close();
    }

    @Test
    void aReleaseErrorOverTheDeadLettersBoundIsCutThereButKeepsItsRootCauseClassAndMessage() throws Exception {
        // the dead letter's header is bounded as the bus bounds its own (4,096 characters): a release error longer
        // than that, a wrapper quoting a payload, is cut, and its root cause, which says what to fix, follows the cut
        EventAggregator aggregator = withAReleaseThrowing(() -> new IllegalStateException("wrapped: " + "x".repeat(10_000),
                new UnknownEventTypeException("no type registered for class NotRegistered")), new AtomicInteger());

        scheduler.advance(Duration.ofMinutes(65)); // keepClosed since the group completed: given up

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(2, dead.size());
        for (Message letter : dead) {
            String error = letter.headers().get(io.streamsaga.message.MessageHeaders.DLT_ERROR_MESSAGE);
            assertTrue(error.contains("IllegalStateException: wrapped: xxx") && error.endsWith("; root cause "
                    + UnknownEventTypeException.class.getName() + ": no type registered for class NotRegistered"), error);
            assertTrue(error.length() < 4096 + 40, "bounded as the bus bounds it: " + error.length());
        }
        aggregator.close();
    }

    @Test
    void aReleaseErrorAndARootCauseBothOverTheBoundStayWithinTheDeadLettersBound() throws Exception {
        // the worst case of the bound: the error and its root cause each 10,000 characters; the root cause is cut to
        // half the bound and the error to what is left, so the header is 4,096 characters and the error's length
        EventAggregator aggregator = withAReleaseThrowing(() -> new IllegalStateException("wrapped: " + "x".repeat(10_000),
                new UnknownEventTypeException("no type: " + "y".repeat(10_000))), new AtomicInteger());

        scheduler.advance(Duration.ofMinutes(65));

        List<Message> dead = transport.messages("item.DLT");
        assertEquals(2, dead.size());
        for (Message letter : dead) {
            String error = letter.headers().get(io.streamsaga.message.MessageHeaders.DLT_ERROR_MESSAGE);
            int rootCause = error.indexOf("; root cause " + UnknownEventTypeException.class.getName() + ": no type: yyy");
            assertTrue(error.contains("IllegalStateException: wrapped: xxx") && rootCause > 0, error);
            int rootLength = (UnknownEventTypeException.class.getName() + ": no type: ").length() + 10_000;
            assertTrue(error.endsWith("y... (" + rootLength + " characters)"), "the root cause cut, its length given");
            String cutMark = error.substring(0, rootCause).replaceAll("^.*x\\.\\.\\. \\((\\d+) characters\\)$", "$1");
            assertEquals(4096 + ("... (" + cutMark + " characters)").length(), error.length(),
                    "4,096 characters of error and root cause, then the error's length: " + error.length());
        }
        aggregator.close();
    }

    @Test
    void anIncompleteGroupStillTimesOutAsItsPolicySays() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(3)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        failing.set(false);
        aggregator.accept(item(1));
        aggregator.accept(item(2));

        scheduler.advance(Duration.ofMinutes(5));

        assertEquals(1, released.size());
        assertTrue(released.get(0).partial());
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(1, counted("timed-out-released"));
        aggregator.close();
    }

    @Test
    void aCompletionRuleThatThrowsAtTheTimeoutLeavesTheGroupToItsTimeoutPolicyNotOpenForEver() throws Exception {
        AtomicBoolean ruleThrows = new AtomicBoolean();
        EventAggregator aggregator = aggregator().completeWhen(group -> {
            if (ruleThrows.get()) {
                throw new IllegalStateException("the application's rule is broken");
            }
            return group.size() >= 3;
        }).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        failing.set(false);
        aggregator.accept(item(1));
        aggregator.accept(item(2));
        ruleThrows.set(true);

        scheduler.advance(Duration.ofMinutes(5));

        assertEquals(1, released.size(), "the timeout policy still ends the group");
        assertTrue(released.get(0).partial());
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        aggregator.close();
    }

    /** Feeds {@code part} into the aggregator from within its releaser, as another consumer thread would. */
    private EventAggregator feedingDuringRelease(EventAggregator.Builder builder, AtomicReference<Message> part,
                                                 AtomicReference<Exception> refused) {
        AtomicReference<EventAggregator> self = new AtomicReference<>();
        EventAggregator aggregator = builder.onRelease(aggregate -> {
            Message arriving = part.getAndSet(null);
            if (arriving != null) {
                try {
                    self.get().accept(arriving);
                } catch (Exception e) {
                    refused.set(e);
                }
            }
            if (failing.get()) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        }).build();
        self.set(aggregator);
        return aggregator;
    }

    @Test
    void aPartArrivingWhileTheGroupTimesOutIsRetriedAndJoinsTheGroupThatAFailedOutcomeReopened() throws Exception {
        AtomicReference<Message> arriving = new AtomicReference<>();
        AtomicReference<Exception> refused = new AtomicReference<>();
        EventAggregator aggregator = feedingDuringRelease(EventAggregator.builder(bus, store).name("items")
                .correlateByField("orderId").completeOnSize(3)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL), arriving, refused);
        aggregator.accept(item(1));
        Message second = item(2);
        arriving.set(second);

        scheduler.advance(Duration.ofMinutes(5)); // TIMING_OUT: the part arrives, then the partial release fails

        AggregationException refusal = assertInstanceOf(AggregationException.class, refused.get());
        assertTrue(refusal.isRetriable(), "the group may be reopened: the part must be retried, not dead-lettered as late");
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state());
        failing.set(false);
        aggregator.accept(second); // the bus's retry of the part joins the reopened group
        aggregator.accept(item(3));

        assertEquals(1, released.size());
        assertEquals(3, released.get(0).group().size(), "no part lost");
        assertFalse(released.get(0).partial());
        aggregator.close();
    }

    @Test
    void aPartArrivingWhileTheGroupIsReleasedIsRetriedAndJoinsTheGroupThatAFailedReleaseReopened() throws Exception {
        AtomicReference<Message> arriving = new AtomicReference<>();
        AtomicReference<Exception> refused = new AtomicReference<>();
        EventAggregator aggregator = feedingDuringRelease(EventAggregator.builder(bus, store).name("items")
                .correlateByField("orderId").completeWhen(g -> g.size() >= 2 && failing.get() || g.size() >= 3),
                arriving, refused);
        aggregator.accept(item(1));
        Message late = item(3);
        arriving.set(late);
        Message completing = item(2);
        assertThrows(IllegalStateException.class, () -> aggregator.accept(completing)); // RELEASING: the part arrives

        AggregationException refusal = assertInstanceOf(AggregationException.class, refused.get());
        assertTrue(refusal.isRetriable());
        failing.set(false);
        aggregator.accept(late); // the bus's retry of the part joins the reopened group and completes it

        assertEquals(1, released.size());
        assertEquals(3, released.get(0).group().size(), "no part lost");
        aggregator.close();
    }

    @Test
    void theCompletingPartRedeliveredWhileTheScheduledRetryReleasesTheGroupDoesNotReleaseItASecondTime() throws Exception {
        AtomicReference<Message> arriving = new AtomicReference<>();
        AtomicReference<Exception> refused = new AtomicReference<>();
        EventAggregator aggregator = feedingDuringRelease(EventAggregator.builder(bus, store).name("items")
                .correlateByField("orderId").completeOnSize(2), arriving, refused);
        aggregator.accept(item(1));
        Message completing = item(2);
        assertThrows(IllegalStateException.class, () -> aggregator.accept(completing)); // reopened, retry scheduled
        failing.set(false);
        arriving.set(completing); // the bus redelivers the completing part while the scheduled retry releases

        scheduler.advance(Duration.ofSeconds(1)); // the scheduled retry of the release (nothing crashed)

        assertEquals(1, released.size(), "one release per group when nothing crashed");
        assertEquals(null, refused.get(), "the redelivery met a release under way: taken (it is in the group), "
                + "not refused for the bus to dead-letter once its retries ran out");
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofMinutes(5)); // the lease's end, checked for the redelivery: the release is recorded
        aggregator.accept(completing); // arriving again: a duplicate
        assertEquals(1, released.size());
        assertEquals(1, completed());
        aggregator.close();
    }

    @Test
    void theCompletingPartRedeliveredToAnotherInstanceWhileTheTimeoutRetriesTheReleaseIsTakenAndTheGroupReleasedOnce()
            throws Exception {
        AtomicReference<EventAggregator> other = new AtomicReference<>();
        AtomicReference<Message> arriving = new AtomicReference<>();
        AtomicReference<Exception> refused = new AtomicReference<>();
        io.streamsaga.aggregator.GroupReleaser releaser = aggregate -> {
            Message part = arriving.getAndSet(null);
            if (part != null) {
                try {
                    other.get().accept(part); // the bus redelivers it to the other instance meanwhile
                } catch (Exception e) {
                    refused.set(e);
                }
            }
            if (failing.get()) {
                throw new IllegalStateException("downstream unavailable");
            }
            released.add(aggregate);
        };
        EventAggregator first = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).onRelease(releaser).build();
        EventAggregator second = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).onRelease(releaser).build();
        other.set(second);
        first.accept(item(1));
        Message completing = item(2);
        assertThrows(IllegalStateException.class, () -> first.accept(completing)); // reopened, its timeout retries it
        failing.set(false);
        arriving.set(completing);

        scheduler.advance(Duration.ofMinutes(5)); // the first instance's deadline releases it; the part reaches the second

        assertEquals(null, refused.get(), "taken: the group holds it and its release is under way");
        assertEquals(1, released.size());
        assertFalse(released.get(0).partial());
        scheduler.advance(Duration.ofHours(2)); // the lease's end checked by the second instance, keepClosed
        assertEquals(1, released.size(), "released once by the two instances");
        assertEquals(0, transport.messages("item.DLT").size());
        assertEquals(1, completed());
        first.close();
        second.close();
    }

    @Test
    void aReleaseLeaseThatIsNotPositiveIsRefusedQuotingIt() {
        io.streamsaga.ConfigurationException refused = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> aggregator().completeOnSize(2).releaseLease(Duration.ZERO).build());
        assertEquals("releaseLease must be positive, but was PT0S", refused.getMessage());
    }
}
