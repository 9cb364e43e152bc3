package io.streamsaga.inmemory.choreography;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowInstance;
import io.streamsaga.choreography.FlowStatus;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link FlowTracker#close()}: a closed tracker observes nothing more, yet the deadline checks it had scheduled
 * still ran and reported every instance in flight as stalled (a warning, the stalled metric and the listeners:
 * false alarms at every shutdown or redeploy, on a scheduler that outlives the tracker). They are silent now, and a
 * closed tracker refuses to start again, as a closed aggregator or serving layer does.
 */
class FlowTrackerAfterCloseTest {
    record Item(String orderId) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
    private final InMemoryMetrics metrics = new InMemoryMetrics();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).metrics(metrics)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final FlowDefinition flow = FlowDefinition.builder("order").event("a", "A", "B").event("b", "B")
            .succeedsOn("b").deadline(Duration.ofMinutes(1)).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aDeadlinePassingAfterCloseIsNotReportedAsAStall() {
        List<FlowInstance> stalled = new CopyOnWriteArrayList<>();
        FlowTracker tracker = FlowTracker.builder(bus, flow).build().start();
        tracker.onStalled(stalled::add);
        bus.publish("a", "o-1", new Item("o-1"));
        transport.drainAll();

        tracker.close();
        scheduler.advance(Duration.ofMinutes(2));

        assertEquals(List.of(), stalled, "the tracker stopped observing: the instance is not stalled for that");
        assertEquals(List.of(), tracker.stalled());
        assertEquals(0, metrics.counter(FlowTracker.STALLED_COUNTER, java.util.Map.of("flow", "order")));
        assertEquals("flow tracker 'order' is closed",
                assertThrows(ConfigurationException.class, tracker::start).getMessage());
    }

    @Test
    void aMessageFedAfterCloseIsIgnoredAndNeitherRecordedNorCounted() {
        FlowTracker tracker = FlowTracker.builder(bus, flow).build().start();
        List<FlowInstance> stalled = new CopyOnWriteArrayList<>();
        tracker.onStalled(stalled::add);
        tracker.close();

        // an application feeding messages it received some other way, after the tracker was closed
        assertFalse(tracker.observe(message("a", "m1", "o-1")), "ignored, as a message of another flow is");
        assertFalse(tracker.observe(message("b", "m2", "o-2")));
        scheduler.advance(Duration.ofMinutes(2));

        assertEquals(Optional.empty(), tracker.where("o-1"), "a closed tracker observes nothing more");
        assertEquals(Optional.empty(), tracker.where("o-2"));
        assertEquals(Map.of(FlowStatus.RUNNING, 0L, FlowStatus.SUCCEEDED, 0L, FlowStatus.FAILED, 0L, FlowStatus.STALLED, 0L),
                tracker.outcomes());
        assertEquals(0, metrics.sagasStarted("order"));
        assertEquals(0, metrics.sagasFinished("order", FlowTracker.OUTCOME_SUCCEEDED));
        assertEquals(List.of(), stalled);
    }

    private Message message(String event, String id, String correlationId) {
        return Message.builder(event).id(id).key(correlationId).type(event).payload(new Item(correlationId))
                .timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, correlationId).build();
    }

    @Test
    void anOpenTrackerStillReportsTheStall() {
        List<FlowInstance> stalled = new CopyOnWriteArrayList<>();
        try (FlowTracker tracker = FlowTracker.builder(bus, flow).build().start()) {
            tracker.onStalled(stalled::add);
            bus.publish("a", "o-1", new Item("o-1"));
            transport.drainAll();
            scheduler.advance(Duration.ofMinutes(2));
            assertEquals(1, stalled.size());
        }
    }
}
