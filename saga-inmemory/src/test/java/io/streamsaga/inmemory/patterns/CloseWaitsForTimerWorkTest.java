package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyInt;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * Once a component's {@code close()} returns, it does no more work: a timer of its already running at close (an
 * aggregator's release at a group's deadline, a flow tracker's deadline check, the claim-check expiry sweep, a saga
 * orchestrator's purge) went on after close() had returned, and a flow tracker's deadline checks stayed queued on the
 * shared scheduler until due. close() now cancels the component's queued timers and waits for the one running on
 * another thread; a close called from that very timer returns (it does not wait for itself).
 */
class CloseWaitsForTimerWorkTest {
    record Item(String orderId, int n) {
    }

    private final Scheduler shared = Scheduler.system();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(shared)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    /** The timer work has started and waits for {@link #release}. */
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch release = new CountDownLatch(1);
    private final AtomicBoolean closeReturned = new AtomicBoolean();
    /** For each piece of timer work that ended: whether close() had returned by then. */
    private final List<Boolean> workEndedAfterClose = new CopyOnWriteArrayList<>();

    @AfterEach
    void closeAll() {
        release.countDown();
        bus.close();
        transport.close();
        shared.close();
    }

    /** Timer work that blocks until released, then records whether close() had returned. */
    private void blockingWork() {
        entered.countDown();
        try {
            release.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        workEndedAfterClose.add(closeReturned.get());
    }

    /** Closes on another thread while the work runs; the work ends once close() waits (or has returned). */
    private void closeWhileTheWorkRuns(Runnable close) throws InterruptedException {
        entered.await();
        Thread closer = new Thread(() -> {
            close.run();
            closeReturned.set(true);
        });
        closer.start();
        await().until(() -> closer.getState() == Thread.State.TIMED_WAITING
                || closer.getState() == Thread.State.WAITING || closer.getState() == Thread.State.TERMINATED);
        release.countDown();
        closer.join();
        assertEquals(List.of(false), workEndedAfterClose, "the timer's work ended before close() returned");
    }

    private Message item(int n) {
        bus.publish("item", "o-1", new Item("o-1", n)).toCompletableFuture().join();
        List<Message> items = transport.messages("item");
        return items.get(items.size() - 1);
    }

    @Test
    void anAggregatorsCloseWaitsForTheReleaseItsDeadlineTimerIsRunning() throws Exception {
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        EventAggregator aggregator = EventAggregator.builder(bus, store).name("items").correlateByField("orderId")
                .completeOnSize(3).timeout(Duration.ofMillis(1), TimeoutPolicy.RELEASE_PARTIAL)
                .onRelease(aggregate -> blockingWork()).build();
        aggregator.accept(item(1));

        closeWhileTheWorkRuns(aggregator::close);
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state(),
                "the release ran whole, before close() returned");
    }

    @Test
    void anAggregatorClosedFromItsOwnReleaseReturnsAndTheReleaseEnds() throws Exception {
        VirtualScheduler virtual = new VirtualScheduler();
        EventBus virtualBus = EventBus.builder(transport).scheduler(virtual)
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
        InMemoryAggregationStore store = new InMemoryAggregationStore();
        AtomicReference<EventAggregator> self = new AtomicReference<>();
        List<String> released = new CopyOnWriteArrayList<>();
        EventAggregator aggregator = EventAggregator.builder(virtualBus, store).name("items").correlateByField("orderId")
                .completeOnSize(3).timeout(Duration.ofMinutes(1), TimeoutPolicy.RELEASE_PARTIAL)
                .onRelease(aggregate -> {
                    self.get().close(); // on the timer's own thread: it must not wait for itself
                    released.add(aggregate.key());
                }).build();
        self.set(aggregator);
        aggregator.accept(item(1));

        virtual.advance(Duration.ofMinutes(1));

        assertEquals(List.of("o-1"), released);
        assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("items", "o-1").orElseThrow().state());
        assertEquals(0, virtual.pendingTasks());
        virtualBus.close();
    }

    @Test
    void aFlowTrackersCloseCancelsItsQueuedDeadlineChecks() {
        VirtualScheduler virtual = new VirtualScheduler();
        EventBus virtualBus = EventBus.builder(transport).scheduler(virtual)
                .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
        FlowTracker tracker = FlowTracker.builder(virtualBus, FlowDefinition.builder("order").event("item", "A", "B")
                .event("done", "B").succeedsOn("done").deadline(Duration.ofMinutes(1)).build()).build();
        tracker.observe(item(1));
        assertEquals(1, virtual.pendingTasks(), "the instance's deadline check");

        tracker.close();

        assertEquals(0, virtual.pendingTasks(), "the closed tracker's check stayed queued on the shared scheduler");
        virtualBus.close();
    }

    @Test
    void aFlowTrackersCloseWaitsForTheDeadlineCheckItsTimerIsRunning() throws Exception {
        FlowTracker tracker = FlowTracker.builder(bus, FlowDefinition.builder("order").event("item", "A", "B")
                .event("done", "B").succeedsOn("done").deadline(Duration.ofMillis(1)).build()).build();
        tracker.onStalled(instance -> blockingWork());
        tracker.observe(item(1));

        closeWhileTheWorkRuns(tracker::close);
    }

    @Test
    void theClaimCheckCloseWaitsForTheExpirySweepRunning() throws Exception {
        PayloadStore store = mock(PayloadStore.class, delegatesTo(new InMemoryPayloadStore()));
        doAnswer(call -> {
            blockingWork();
            return 0;
        }).when(store).deleteStoredBefore(any(Instant.class), anyInt());
        ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(shared)
                .sweepInterval(Duration.ofMillis(1)).build();

        closeWhileTheWorkRuns(claimCheck::close);
    }

    @Test
    void aSagaOrchestratorsCloseWaitsForThePurgeRunning() throws Exception {
        InMemorySagaStore store = mock(InMemorySagaStore.class, delegatesTo(new InMemorySagaStore()));
        doAnswer(call -> {
            blockingWork();
            return 0;
        }).when(store).deleteFinishedBefore(any(Instant.class), anyInt());
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(shared)
                .purgeEvery(Duration.ofMillis(1)).build();

        closeWhileTheWorkRuns(orchestrator::close);
    }
}
