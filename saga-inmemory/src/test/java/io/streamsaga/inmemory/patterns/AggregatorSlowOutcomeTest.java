package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/patterns.md (aggregator): "When nothing crashed, a group is released once", its outcome held by a lease
 * ({@code releaseLease}) during which no other instance runs it. An outcome slower than a short timeout (a partial
 * release to a slow downstream) on a healthy instance is not released a second time. The releaser here moves the
 * virtual clock on while it runs, as a slow one lets time pass, and other instances' timers fall due meanwhile.
 */
class AggregatorSlowOutcomeTest {
    record Item(String orderId, int n) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final InMemoryAggregationStore store = new InMemoryAggregationStore();
    private final List<Aggregate> released = new CopyOnWriteArrayList<>();
    private final AtomicInteger calls = new AtomicInteger();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** A releaser whose first call takes {@code slow} (of virtual time). */
    private EventAggregator.Builder aggregator(Duration slow) {
        return EventAggregator.builder(bus, store).name("items").correlateByField("orderId").onRelease(aggregate -> {
            if (calls.incrementAndGet() == 1) {
                scheduler.advance(slow);
            }
            released.add(aggregate);
        });
    }

    private Message item(int n) {
        bus.publish("item", "o-1", new Item("o-1", n)).toCompletableFuture().join();
        List<Message> items = transport.messages("item");
        return items.get(items.size() - 1);
    }

    @Test
    void aPartialReleaseSlowerThanTheTimeoutIsNotTakenOverByAnotherInstance() throws Exception {
        Duration timeout = Duration.ofMinutes(1);
        EventAggregator first = aggregator(Duration.ofMinutes(2)).completeOnSize(3)
                .timeout(timeout, TimeoutPolicy.RELEASE_PARTIAL).build();
        first.accept(item(1));
        EventAggregator second = aggregator(Duration.ofMinutes(2)).completeOnSize(3)
                .timeout(timeout, TimeoutPolicy.RELEASE_PARTIAL).build(); // re-arms the group's timeout as well

        scheduler.advance(timeout); // one instance claims the timeout; its partial release takes two minutes

        assertEquals(1, released.size(), "a healthy instance's partial release is not run a second time: "
                + "its lease is the release lease (5 minutes), not one timeout");
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(1, released.size());
        first.close();
        second.close();
    }

    @Test
    void aReleaseSlowerThanItsLeaseIsNotRunAgainByTheTimerOfItsOwnInstance() throws Exception {
        EventAggregator aggregator = aggregator(Duration.ofMinutes(6)).completeOnSize(2).build();
        aggregator.accept(item(1));

        aggregator.accept(item(2)); // released, taking six minutes: the lease's end (5 minutes) falls due meanwhile

        assertEquals(1, released.size(), "the instance knows its own release still runs: it takes nothing over");
        assertEquals(GroupState.COMPLETED, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(1, released.size());
        aggregator.close();
    }

    @Test
    void aPartialReleaseSlowerThanItsLeaseIsNotRunAgainByTheTimerOfItsOwnInstance() throws Exception {
        EventAggregator aggregator = aggregator(Duration.ofMinutes(6)).completeOnSize(3)
                .timeout(Duration.ofMinutes(1), TimeoutPolicy.RELEASE_PARTIAL).build();
        aggregator.accept(item(1));

        scheduler.advance(Duration.ofMinutes(1)); // the partial release takes six minutes

        assertEquals(1, released.size(), "the instance knows its own outcome still runs: it takes nothing over");
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(1, released.size());
        aggregator.close();
    }
}
