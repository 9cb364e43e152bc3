package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.codec.UnknownEventTypeException;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * docs/patterns.md (aggregator): a group is recorded released only once what its releaser published went through. A
 * releaser that publishes without waiting (as {@code aggregate -> bus.publish(...)} does) whose publish fails has its
 * release fail and run again, on the completing part's retry or on a timer, rather than the group recorded released
 * with its aggregate lost (a redelivered part of a released group being only a duplicate).
 */
class AggregatorReleasePublishFailureTest {
    record Item(String orderId, int n) {
    }

    record OrderCompleted(String orderId, int items) {
    }

    /** A class the bus's registry leaves out: its publish can never go through. */
    record NotRegistered(String orderId) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    /** How many sends to order-completed the transport still refuses. */
    private final AtomicInteger refusals = new AtomicInteger(1);
    private final InMemoryTransport transport = refusingCompletions();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
            .types(TypeRegistry.builder().register("item", 1, Item.class)
                    .register("order-completed", 1, OrderCompleted.class).build()).build();
    private final InMemoryAggregationStore store = new InMemoryAggregationStore();

    private InMemoryTransport refusingCompletions() {
        InMemoryTransport refusing = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (message.topic().equals("order-completed") && refusals.getAndDecrement() > 0) {
                return CompletableFuture.failedFuture(new PublishException(message.topic(), "broker unavailable", null, true));
            }
            return real.send(message);
        }).when(refusing).send(any(Message.class));
        return refusing;
    }

    @AfterEach
    void close() {
        bus.close();
        real.close();
    }

    /** Publishes the release's outcome without waiting for it, as the docs' example does. */
    private EventAggregator.Builder aggregator() {
        return EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .onRelease(aggregate -> bus.publish("order-completed", aggregate.group().key(),
                        new OrderCompleted(aggregate.group().key(), aggregate.group().size())));
    }

    private Message item(int n) {
        bus.publish("item", "o-1", new Item("o-1", n)).toCompletableFuture().join();
        return real.messages("item").get(real.messages("item").size() - 1);
    }

    @Test
    void aReleaseWhosePublishFailsOnceIsPublishedOnceWhenItsCompletingPartIsRetried() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2).build();
        aggregator.subscribe("items", "item");

        item(1);
        Message last = item(2);
        real.drainAll();

        assertEquals(1, real.messages("order-completed").size(), "the aggregate is published once its publish went through");
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(0, real.messages("item.DLT").size());
        aggregator.accept(last); // the completing part redelivered after the release went through: a duplicate
        assertEquals(1, real.messages("order-completed").size(), "a part of a released group does not release it again");
        aggregator.close();
    }

    @Test
    void aPartialReleaseOnTheTimerWhosePublishFailsOnceIsPublishedOnceAtTheNextTimeout() throws Exception {
        EventAggregator aggregator = aggregator().completeOnSize(2)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL).build();
        aggregator.subscribe("items", "item");
        item(1);
        real.drainAll();

        scheduler.advance(Duration.ofMinutes(5)); // the timeout: its publish is refused, on the scheduler's thread
        assertEquals(0, real.messages("order-completed").size());
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state(), "reopened, not recorded released");
        scheduler.advance(Duration.ofMinutes(5)); // the timeout runs again

        assertEquals(1, real.messages("order-completed").size());
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofHours(2));
        assertEquals(1, real.messages("order-completed").size(), "released once");
        aggregator.close();
    }

    @Test
    void aRetriedReleaseOnTheTimerWhosePublishFailsIsRetriedUntilItsPublishWentThrough() throws Exception {
        refusals.set(4); // the part's three attempts, then the first retry on the timer
        EventAggregator aggregator = aggregator().completeOnSize(2)
                .timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).build();
        aggregator.subscribe("items", "item");
        item(1);
        item(2);
        real.drainAll(); // the part's retries ran out: dead-lettered naming the refused publish

        assertEquals(1, real.messages("item.DLT").size());
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofMinutes(5)); // retried on the timer: refused again
        assertEquals(0, real.messages("order-completed").size());
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state(), "reopened, not recorded released");
        scheduler.advance(Duration.ofMinutes(5));

        assertEquals(1, real.messages("order-completed").size());
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        assertTrue(refusals.get() < 0);
        aggregator.close();
    }

    @Test
    void aReleaseWhosePublishCanNeverGoThroughHasItsPartsDeadLetteredNamingThePublishAfterKeepClosed() throws Exception {
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(2).timeout(Duration.ofMinutes(5), TimeoutPolicy.DEAD_LETTER).keepClosed(Duration.ofHours(1))
                .onRelease(aggregate -> bus.publish("order-completed", aggregate.group().key(),
                        new NotRegistered(aggregate.group().key())))
                .build();
        aggregator.subscribe("items", "item");
        item(1);
        item(2);
        real.drainAll(); // bad input, not retried: the completing part is dead-lettered naming the publish

        assertEquals(1, real.messages("item.DLT").size());
        assertEquals(GroupState.OPEN, store.find("items", "o-1").orElseThrow().state(), "not recorded released");
        scheduler.advance(Duration.ofMinutes(65)); // retried every timeout until keepClosed since it completed

        assertEquals(0, real.messages("order-completed").size());
        assertEquals(GroupState.TIMED_OUT_DEAD_LETTERED, store.find("items", "o-1").orElseThrow().state());
        long releaseFailed = real.messages("item.DLT").stream()
                .filter(letter -> "aggregation-release-failed".equals(letter.headers().get(MessageHeaders.DLT_REASON)))
                .peek(letter -> {
                    String error = letter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE);
                    assertTrue(error.contains(PublishException.class.getName()) && error.contains("order-completed")
                            && error.contains("a publish outside a handler"), error);
                    // the root cause whole, after the publish that failed: what the release's publish lacks
                    assertTrue(error.contains(UnknownEventTypeException.class.getName() + ": ")
                            && error.contains(NotRegistered.class.getName()), error);
                }).count();
        assertEquals(2, releaseFailed, "both parts dead-lettered with the release's error, nothing lost silently");
        aggregator.close();
    }
}
