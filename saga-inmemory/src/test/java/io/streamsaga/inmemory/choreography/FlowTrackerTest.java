package io.streamsaga.inmemory.choreography;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowInstance;
import io.streamsaga.choreography.FlowStatus;
import io.streamsaga.choreography.FlowStep;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The order choreography of the source, followed from the outside by a {@link FlowTracker}. */
class FlowTrackerTest {
    record OrderCreated(String orderId, long amount) {
    }

    record InventoryReserved(String orderId, long amount) {
    }

    record InventoryReservationFailed(String orderId, String reason) {
    }

    record PaymentProcessed(String orderId) {
    }

    record PaymentFailed(String orderId, String reason) {
    }

    record OrderCancelled(String orderId) {
    }

    record InventoryReleased(String orderId) {
    }

    static final FlowDefinition ORDER_FLOW = FlowDefinition.builder("order")
            .event("order-created", "Order", "Inventory")
            .event("inventory-reserved", "Inventory", "Payment")
            .event("inventory-reservation-failed", "Inventory")
            .event("payment-processed", "Payment")
            .event("payment-failed", "Payment", "Order")
            .event("order-cancelled", "Order", "Inventory")
            .event("inventory-released", "Inventory")
            .succeedsOn("payment-processed")
            .failsOn("inventory-reservation-failed", "inventory-released")
            .deadline(Duration.ofSeconds(30))
            .build();

    /** Inventory: reserves when stock allows, releases on cancellation. */
    public static final class Inventory {
        final EventBus bus;
        final long stockLimit;

        Inventory(EventBus bus, long stockLimit) {
            this.bus = bus;
            this.stockLimit = stockLimit;
        }

        @EventPattern("order-created")
        public void reserve(OrderCreated event) {
            if (event.amount() > stockLimit) {
                bus.publish("inventory-reservation-failed", event.orderId(), new InventoryReservationFailed(event.orderId(), "out of stock"));
            } else {
                bus.publish("inventory-reserved", event.orderId(), new InventoryReserved(event.orderId(), event.amount()));
            }
        }

        @EventPattern("order-cancelled")
        public void release(OrderCancelled event) {
            bus.publish("inventory-released", event.orderId(), new InventoryReleased(event.orderId()));
        }
    }

    /** Payment: declines amounts over its limit. */
    public static final class Payment {
        final EventBus bus;
        final long limit;

        Payment(EventBus bus, long limit) {
            this.bus = bus;
            this.limit = limit;
        }

        @EventPattern("inventory-reserved")
        public void charge(InventoryReserved event) {
            if (event.amount() > limit) {
                bus.publish("payment-failed", event.orderId(), new PaymentFailed(event.orderId(), "declined"));
            } else {
                bus.publish("payment-processed", event.orderId(), new PaymentProcessed(event.orderId()));
            }
        }
    }

    /** Order: cancels on payment failure. */
    public static final class Order {
        final EventBus bus;

        Order(EventBus bus) {
            this.bus = bus;
        }

        @EventPattern("payment-failed")
        public void cancel(PaymentFailed event) {
            bus.publish("order-cancelled", event.orderId(), new OrderCancelled(event.orderId()));
        }
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final List<String> counters = new CopyOnWriteArrayList<>();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder()
                    .register("order-created", 1, OrderCreated.class)
                    .register("inventory-reserved", 1, InventoryReserved.class)
                    .register("inventory-reservation-failed", 1, InventoryReservationFailed.class)
                    .register("payment-processed", 1, PaymentProcessed.class)
                    .register("payment-failed", 1, PaymentFailed.class)
                    .register("order-cancelled", 1, OrderCancelled.class)
                    .register("inventory-released", 1, InventoryReleased.class)
                    .build())
            .scheduler(scheduler)
            .metrics(new MetricsRecorder() {
                @Override
                public void increment(String name, Map<String, String> tags) {
                    counters.add(name + tags);
                }

                @Override
                public void sagaStarted(String sagaName) {
                    counters.add("started " + sagaName);
                }

                @Override
                public void sagaFinished(String sagaName, String outcome, Duration duration) {
                    counters.add("finished " + sagaName + " " + outcome + " " + duration);
                }
            })
            .build();
    private final FlowTracker tracker = FlowTracker.builder(bus, ORDER_FLOW).build().start();

    @AfterEach
    void close() {
        tracker.close();
        bus.close();
        transport.close();
    }

    private void services(long stockLimit, long paymentLimit) {
        bus.register("inventory", new Inventory(bus, stockLimit));
        bus.register("payment", new Payment(bus, paymentLimit));
        bus.register("order", new Order(bus));
    }

    private String placeOrder(String orderId, long amount) {
        Message message = Message.builder("order-created").key(orderId).type("order-created")
                .payload(new OrderCreated(orderId, amount)).timestamp(scheduler.now())
                .header(MessageHeaders.CORRELATION_ID, "corr-" + orderId).build();
        bus.publish(message);
        return "corr-" + orderId;
    }

    @Test
    void happyPathIsFollowedByCorrelationIdToSuccess() {
        services(1000, 1000);
        String correlation = placeOrder("o-1", 100);
        transport.drainAll();

        FlowInstance instance = tracker.where(correlation).orElseThrow();
        assertEquals(FlowStatus.SUCCEEDED, instance.status());
        assertEquals(List.of("order-created", "inventory-reserved", "payment-processed"), instance.path());
        assertEquals(1L, tracker.outcomes().get(FlowStatus.SUCCEEDED));
        assertEquals(List.of("started order", "finished order completed PT0S"), counters);
    }

    @Test
    void paymentFailureIsCompensatedByCancellationAndReleaseAndEndsFailed() {
        services(1000, 50);
        String correlation = placeOrder("o-2", 100);
        transport.drainAll();

        FlowInstance instance = tracker.where(correlation).orElseThrow();
        assertEquals(FlowStatus.FAILED, instance.status());
        assertEquals(List.of("order-created", "inventory-reserved", "payment-failed", "order-cancelled", "inventory-released"),
                instance.path());
        // causation chains each event to the one it reacted to
        for (int i = 1; i < instance.steps().size(); i++) {
            assertEquals(instance.steps().get(i - 1).messageId(), instance.steps().get(i).causationId());
        }
    }

    @Test
    void reservationFailureEndsTheFlowFailedWithoutPayment() {
        services(10, 1000);
        String correlation = placeOrder("o-3", 100);
        transport.drainAll();

        assertEquals(List.of("order-created", "inventory-reservation-failed"), tracker.where(correlation).orElseThrow().path());
        assertEquals(FlowStatus.FAILED, tracker.where(correlation).orElseThrow().status());
    }

    @Test
    void aStalledListenerThrowingACheckedExceptionIsLoggedAndTheOtherListenersStillHearOfTheStall() {
        bus.register("inventory", new Inventory(bus, 1000));
        // a listener written in Kotlin (no checked exceptions) or with a sneaky throw
        tracker.onStalled(instance -> sneakyThrow(new java.io.IOException("pager unreachable")));
        List<FlowInstance> reported = new CopyOnWriteArrayList<>();
        tracker.onStalled(reported::add);
        String correlation = placeOrder("o-4", 100);
        transport.drainAll();

        scheduler.advance(Duration.ofSeconds(30));

        assertEquals(1, reported.size(), "a failing listener does not keep the stall from the others");
        assertEquals(correlation, reported.get(0).correlationId());
    }

    @Test
    void aStalledListenerThrowingAnAssertionErrorIsLoggedAndTheOtherListenersStillHearOfTheStall() {
        bus.register("inventory", new Inventory(bus, 1000));
        tracker.onStalled(instance -> {
            throw new AssertionError("a listener's own bug");
        });
        List<FlowInstance> reported = new CopyOnWriteArrayList<>();
        tracker.onStalled(reported::add);
        String correlation = placeOrder("o-4", 100);
        transport.drainAll();

        scheduler.advance(Duration.ofSeconds(30));

        assertEquals(1, reported.size(), "a listener's AssertionError does not keep the stall from the others");
        assertEquals(correlation, reported.get(0).correlationId());
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }

    @Test
    void instanceWithNoTerminalEventIsReportedStalledExactlyAtItsDeadline() {
        // payment service is down: nobody reacts to inventory-reserved
        bus.register("inventory", new Inventory(bus, 1000));
        List<FlowInstance> reported = new CopyOnWriteArrayList<>();
        tracker.onStalled(reported::add);
        String correlation = placeOrder("o-4", 100);
        transport.drainAll();

        scheduler.advance(Duration.ofSeconds(29));
        assertEquals(FlowStatus.RUNNING, tracker.where(correlation).orElseThrow().status());
        assertTrue(reported.isEmpty());

        scheduler.advance(Duration.ofSeconds(1));
        assertEquals(1, reported.size());
        FlowInstance stalled = reported.get(0);
        assertEquals(correlation, stalled.correlationId());
        assertEquals(FlowStatus.STALLED, stalled.status());
        assertEquals("inventory-reserved", stalled.lastStep().orElseThrow().event());
        assertEquals(List.of(stalled), tracker.stalled());
        assertTrue(tracker.report().contains("stalled " + correlation));
        assertTrue(counters.contains(FlowTracker.STALLED_COUNTER + Map.of("flow", "order")));
    }

    @Test
    void finishedInstanceIsNeverReportedStalled() {
        services(1000, 1000);
        List<FlowInstance> reported = new CopyOnWriteArrayList<>();
        tracker.onStalled(reported::add);
        placeOrder("o-5", 100);
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(5));
        assertTrue(reported.isEmpty());
        assertEquals(0L, tracker.outcomes().get(FlowStatus.STALLED));
    }

    @Test
    void duplicateDeliveryOfAMessageIsRecordedOnce() {
        Message created = Message.builder("order-created").key("o-6").type("order-created")
                .payload(new OrderCreated("o-6", 1)).timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, "c6").build();
        assertTrue(tracker.observe(created));
        assertTrue(tracker.observe(created));
        assertFalse(tracker.observe(created.toBuilder().type("unrelated").build().withTopic("unrelated")));
        assertEquals(List.of("order-created"), tracker.where("c6").orElseThrow().path());
    }

    @Test
    void mermaidDiagramShowsTheInstancePathBetweenServices() {
        services(1000, 50);
        String correlation = placeOrder("o-7", 100);
        transport.drainAll();

        String diagram = tracker.mermaid(correlation).orElseThrow();
        assertTrue(diagram.startsWith("sequenceDiagram\n"));
        assertTrue(diagram.contains("Order->>Inventory: order-created"));
        assertTrue(diagram.contains("Payment->>Order: payment-failed"));
        assertTrue(diagram.contains("Order->>Inventory: order-cancelled"));
        assertTrue(diagram.contains("Note over Inventory: inventory-released"));
        assertTrue(diagram.contains(correlation + " FAILED"));
        assertTrue(diagram.indexOf("order-created") < diagram.indexOf("payment-failed"));
    }

    @Test
    void unknownInstanceIsAbsent() {
        assertTrue(tracker.where("nobody").isEmpty());
    }

    private Message event(String topic, String id, String causation, String correlation) {
        Message.Builder builder = Message.builder(topic).id(id).key("k").type(topic).payload(new OrderCancelled("x"))
                .timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, correlation);
        if (causation != null) {
            builder.header(MessageHeaders.CAUSATION_ID, causation);
        }
        return builder.build();
    }

    @Test
    void eventsSeenOutOfOrderAreSortedByCausation() {
        tracker.observe(event("payment-processed", "m3", "m2", "c8"));
        tracker.observe(event("order-created", "m1", null, "c8"));
        tracker.observe(event("inventory-reserved", "m2", "m1", "c8"));
        FlowInstance instance = tracker.where("c8").orElseThrow();
        assertEquals(List.of("order-created", "inventory-reserved", "payment-processed"), instance.path());
        assertEquals(FlowStatus.SUCCEEDED, instance.status());
    }

    @Test
    void anEffectStampedBeforeItsCauseStillSortsAfterIt() {
        // another service's clock, or a wall clock set back, stamps the reaction earlier than the event it reacts to
        Message created = event("order-created", "m1", null, "c10");
        Message failed = event("inventory-reservation-failed", "m2", "m1", "c10").toBuilder()
                .timestamp(created.timestamp().minusMillis(3)).build();
        tracker.observe(created);
        tracker.observe(failed);
        assertEquals(List.of("order-created", "inventory-reservation-failed"), tracker.where("c10").orElseThrow().path());
    }

    @Test
    void aLongCausationChainKeepsEveryStepAfterItsCauseAlsoWhenALateCauseArrivesAfterItsEffect() {
        // a long-running flow: each retry of a payment caused by the failure before it, all under one correlation id;
        // each step takes its place from its cause's, and a cause arriving after its effect re-sorts the instance.
        // What this costs on a long chain is measured by FlowTrackerBenchmark.longCausationChain, not here.
        int events = 50;
        tracker.observe(event("order-created", "m0", null, "c-long"));
        for (int i = 1; i < events - 1; i++) {
            tracker.observe(event("inventory-reserved", "m" + i, "m" + (i - 1), "c-long"));
        }
        // one late event and its effect arriving before it, stamped earlier than both: causation still orders them
        Message last = event("payment-processed", "m" + (events - 1), "late", "c-long");
        tracker.observe(last.toBuilder().timestamp(last.timestamp().minusSeconds(1)).build());
        tracker.observe(event("payment-failed", "late", "m" + (events - 2), "c-long"));

        List<FlowStep> steps = tracker.where("c-long").orElseThrow().steps();
        List<String> ids = steps.stream().map(FlowStep::messageId).toList();
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < events - 1; i++) {
            expected.add("m" + i);
        }
        expected.add("late");
        expected.add("m" + (events - 1));
        assertEquals(expected, ids);
    }

    @Test
    void causesArrivingLastFirstAreSortedByCausationThenArrivalWhereverTheInstanceIsRead() {
        // the topics of the causes lag behind those of their effects: each event arrives after the ones it caused,
        // all stamped alike; x is a second reaction to m1, arriving early. What this costs on a long chain is measured
        // by FlowTrackerBenchmark.causesArrivingInReverse, not here.
        tracker.observe(event("inventory-released", "m5", "m4", "c-rev"));
        tracker.observe(event("order-cancelled", "m4", "m3", "c-rev"));
        tracker.observe(event("inventory-reserved", "x", "m1", "c-rev"));
        tracker.observe(event("payment-failed", "m3", "m2", "c-rev"));
        tracker.observe(event("order-cancelled", "m4", "m3", "c-rev")); // redelivered: recorded once
        assertEquals(List.of("x", "m3", "m4", "m5"), ids(tracker.where("c-rev").orElseThrow()),
                "read half-way: two chain starts of equal keys (x, m3) in the order they arrived");

        tracker.observe(event("inventory-reserved", "m2", "m1", "c-rev"));
        tracker.observe(event("order-created", "m1", null, "c-rev"));

        FlowInstance instance = tracker.where("c-rev").orElseThrow();
        assertEquals(List.of("m1", "x", "m2", "m3", "m4", "m5"), ids(instance), "x and m2, both caused by m1, by arrival");
        assertEquals(FlowStatus.FAILED, instance.status());
    }

    @Test
    void stepsOfEqualKeysSortByArrivalAlsoAfterALateCauseMakesTheirKeysEqual() {
        // all stamped alike: a follows c0; b arrives before its cause x, which then puts b at a's depth
        tracker.observe(event("order-created", "c0", null, "c-tie"));
        tracker.observe(event("inventory-reserved", "a", "c0", "c-tie"));
        tracker.observe(event("inventory-reserved", "b", "x", "c-tie"));
        tracker.observe(event("order-created", "x", null, "c-tie"));
        assertEquals(List.of("c0", "x", "a", "b"), ids(tracker.where("c-tie").orElseThrow()),
                "a and b, each one step after a chain's start, in the order they arrived");
    }

    private static List<String> ids(FlowInstance instance) {
        return instance.steps().stream().map(FlowStep::messageId).toList();
    }

    @Test
    void terminalEventAfterTheDeadlineFinishesTheInstanceButKeepsTheMissedDeadline() {
        tracker.observe(event("order-created", "m1", null, "c9"));
        scheduler.advance(Duration.ofSeconds(31));
        assertEquals(FlowStatus.STALLED, tracker.where("c9").orElseThrow().status());

        tracker.observe(event("inventory-reservation-failed", "m2", "m1", "c9"));
        FlowInstance instance = tracker.where("c9").orElseThrow();
        assertEquals(FlowStatus.FAILED, instance.status());
        assertTrue(instance.missedDeadline());
        assertTrue(tracker.stalled().isEmpty());
    }

    @Test
    void aTrackerCatchingUpOnTheLogGivesEachInstanceItsDeadlineToShowItsOtherEventsInsteadOfReportingItAtOnce() {
        // yesterday: o-10 succeeded within a second, o-11 stalled (the payment service was down)
        services(1000, 1000);
        placeOrder("o-10", 100);
        transport.drainAll();
        bus.close();
        EventBus inventoryOnly = EventBus.builder(transport).types(bus.codec().types()).scheduler(scheduler).build();
        inventoryOnly.register("inventory", new Inventory(inventoryOnly, 1000));
        inventoryOnly.publish(Message.builder("order-created").key("o-11").type("order-created")
                .payload(new OrderCreated("o-11", 100)).timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, "corr-o-11").build());
        transport.drainAll();
        scheduler.advance(Duration.ofDays(1));

        // today a tracker (new, or back after an outage) reads that history; its topics come in one at a time
        try (FlowTracker late = FlowTracker.builder(inventoryOnly, ORDER_FLOW).group("late").build()) {
            List<FlowInstance> reported = new CopyOnWriteArrayList<>();
            late.onStalled(reported::add);
            late.start(io.streamsaga.bus.StartPosition.EARLIEST);
            for (int delivered = 0; transport.drain(1) > 0; delivered++) {
                scheduler.runDueTasks(); // what a scheduler thread does between two deliveries
                assertTrue(reported.isEmpty(), "reported stalled after " + (delivered + 1) + " deliveries: " + reported);
            }

            FlowInstance succeeded = late.where("corr-o-10").orElseThrow();
            assertEquals(FlowStatus.SUCCEEDED, succeeded.status());
            assertFalse(succeeded.missedDeadline(), "o-10 ended a second after it began: " + succeeded);
            assertEquals(FlowStatus.RUNNING, late.where("corr-o-11").orElseThrow().status());

            scheduler.advance(Duration.ofSeconds(30)); // the deadline, counted from when the tracker first saw o-11
            assertEquals(List.of("corr-o-11"), reported.stream().map(FlowInstance::correlationId).toList());
        } finally {
            inventoryOnly.close();
        }
    }

    /** Limit of a tracker reading a backlog, documented in docs/choreography.md. */
    @Test
    void aPastFlowThatFinishedLateReadFromABacklogIsNotMarkedAsHavingMissedItsDeadline() {
        // yesterday o-20 took 45 s, over its 30 s deadline; today the tracker reads both events one after the other
        Message created = event("order-created", "m1", null, "c-late");
        tracker.observe(created.toBuilder().timestamp(scheduler.now().minus(Duration.ofDays(1))).build());
        tracker.observe(created.toBuilder().id("m2").type("payment-processed").header(MessageHeaders.CAUSATION_ID, "m1")
                .timestamp(scheduler.now().minus(Duration.ofDays(1)).plusSeconds(45)).build().withTopic("payment-processed"));

        FlowInstance instance = tracker.where("c-late").orElseThrow();
        assertEquals(FlowStatus.SUCCEEDED, instance.status());
        assertFalse(instance.missedDeadline(), "it was never reported stalled: it finished before the tracker's deadline");
        assertTrue(instance.lastStep().orElseThrow().at().isAfter(instance.startedAt().plus(ORDER_FLOW.deadline())),
                "its own timestamps show it: the terminal event came 45 s after the first");
    }

    /** Limit of a tracker reading a backlog, documented in docs/choreography.md. */
    @Test
    void aPastFlowWhoseTerminalEventIsReadMoreThanADeadlineAfterItsFirstIsReportedStalledThoughItFinishedInTime() {
        // yesterday o-21 succeeded within a second; today the payment topic's backlog is read 31 s after the order's
        Message created = event("order-created", "m1", null, "c-slow-read");
        List<FlowInstance> reported = new CopyOnWriteArrayList<>();
        tracker.onStalled(reported::add);
        tracker.observe(created.toBuilder().timestamp(scheduler.now().minus(Duration.ofDays(1))).build());
        scheduler.advance(Duration.ofSeconds(31));
        tracker.observe(created.toBuilder().id("m2").type("payment-processed").header(MessageHeaders.CAUSATION_ID, "m1")
                .timestamp(scheduler.now().minus(Duration.ofDays(1))).build().withTopic("payment-processed"));

        assertEquals(List.of("c-slow-read"), reported.stream().map(FlowInstance::correlationId).toList(),
                "the tracker cannot tell an unread terminal event from a missing one");
        FlowInstance instance = tracker.where("c-slow-read").orElseThrow();
        assertEquals(FlowStatus.SUCCEEDED, instance.status());
        assertTrue(instance.missedDeadline());
    }

    /**
     * {@code topics("*.DLT")} (the tracker following dead letters, which a wildcard never takes) was taken by the
     * builder and refused only by the bus at {@code start()}, far from the call that named it.
     */
    @Test
    void aTopicPatternThatMatchesNoTopicIsRefusedByTheBuilderNamingIt() {
        FlowTracker.Builder builder = FlowTracker.builder(bus, ORDER_FLOW);

        ConfigurationException e = assertThrows(ConfigurationException.class, () -> builder.topics("orders", "*.DLT"));

        assertTrue(e.getMessage().startsWith("flow tracker 'order' cannot follow '*.DLT', a wildcard that matches no"
                + " topic"), e.getMessage());
    }

    @Test
    void finishedInstancesBeyondTheLimitAreForgottenOldestFirst() {
        try (FlowTracker small = FlowTracker.builder(bus, ORDER_FLOW).group("small").maxFinishedInstances(2).build()) {
            for (int i = 1; i <= 3; i++) {
                small.observe(event("order-created", "a" + i, null, "f" + i));
                small.observe(event("payment-processed", "b" + i, "a" + i, "f" + i));
            }
            small.observe(event("order-created", "a4", null, "running"));
            assertTrue(small.where("f1").isEmpty());
            assertTrue(small.where("f2").isPresent());
            assertTrue(small.where("f3").isPresent());
            assertTrue(small.where("running").isPresent());
        }
    }

    @Test
    void anInstanceFinishingLongAfterItBeganIsKeptAsTheMostRecentlyFinishedNotForgottenAtOnce() {
        try (FlowTracker small = FlowTracker.builder(bus, ORDER_FLOW).group("small").maxFinishedInstances(2).build()) {
            small.observe(event("order-created", "s1", null, "slow")); // first seen, finishes last
            for (int i = 1; i <= 2; i++) {
                small.observe(event("order-created", "a" + i, null, "f" + i));
                small.observe(event("payment-processed", "b" + i, "a" + i, "f" + i));
            }
            small.observe(event("payment-processed", "s2", "s1", "slow"));

            assertEquals(FlowStatus.SUCCEEDED, small.where("slow").orElseThrow().status(),
                    "the instance that finished last is among the 2 most recently finished");
            assertTrue(small.where("f1").isEmpty(), "f1 finished first, so it is the one forgotten");
            assertTrue(small.where("f2").isPresent());
        }
    }

    @Test
    void finishedInstancesAmongUnfinishedOnesAreForgottenOldestFirstAndTheUnfinishedAreAllKept() {
        // flows in flight (or stalled: the payment service was down a while), all kept, among flows that finish.
        // That forgetting does not walk past the unfinished instances is measured by
        // FlowTrackerBenchmark.flowFinishingBesideUnfinishedInstances, not here.
        try (EventBus quiet = EventBus.builder(transport).scheduler(scheduler).build(); // not this class's list of counters
             FlowTracker busy = FlowTracker.builder(quiet, ORDER_FLOW).group("busy").maxFinishedInstances(3).build()) {
            for (int i = 0; i < 10; i++) {
                busy.observe(event("order-created", "u" + i, null, "unfinished-" + i));
                busy.observe(event("order-created", "a" + i, null, "f" + i));
                busy.observe(event("payment-processed", "b" + i, "a" + i, "f" + i));
            }

            assertEquals(Map.of(FlowStatus.RUNNING, 10L, FlowStatus.SUCCEEDED, 3L, FlowStatus.FAILED, 0L,
                    FlowStatus.STALLED, 0L), busy.outcomes());
            for (int i = 0; i < 10; i++) {
                assertTrue(busy.where("unfinished-" + i).isPresent(), "unfinished-" + i + " was forgotten");
                assertEquals(i >= 7, busy.where("f" + i).isPresent(), "f" + i);
            }
        }
    }

    @Test
    void anEventOfAForgottenFinishedInstanceRedeliveredLaterStartsNoPhantomInstance() {
        try (FlowTracker small = FlowTracker.builder(bus, ORDER_FLOW).group("small").maxFinishedInstances(1).build()) {
            Message created = event("order-created", "a1", null, "f1");
            small.observe(created);
            small.observe(event("payment-processed", "b1", "a1", "f1"));
            small.observe(event("order-created", "a2", null, "f2"));
            small.observe(event("payment-processed", "b2", "a2", "f2"));
            assertTrue(small.where("f1").isEmpty(), "f1 finished and was forgotten");

            small.observe(created); // redelivered (at-least-once) after its instance was forgotten
            scheduler.advance(Duration.ofSeconds(31));
            assertTrue(small.where("f1").isEmpty(), "no instance is started again for a finished flow");
            assertTrue(small.stalled().isEmpty(), "a finished flow is never reported stalled");
        }
    }

    @Test
    void keepingNoFinishedInstanceIsRefusedAsARedeliveredEventOfAFinishedFlowWouldBeReportedStalled() {
        FlowTracker.Builder builder = FlowTracker.builder(bus, ORDER_FLOW).group("none");
        ConfigurationException refused = assertThrows(ConfigurationException.class, () -> builder.maxFinishedInstances(0));
        assertTrue(refused.getMessage().contains("but was 0"), refused.getMessage());
        assertTrue(refused.getMessage().contains("stalled"), refused.getMessage());
    }

    @Test
    void manyConcurrentFlowsOnAsyncDeliveryAreEachFollowedToTheirOutcome() {
        try (InMemoryTransport async = InMemoryTransport.builder().partitions(4).build();
             EventBus asyncBus = EventBus.builder(async).types(TypeRegistry.builder()
                     .register("order-created", 1, OrderCreated.class)
                     .register("inventory-reserved", 1, InventoryReserved.class)
                     .register("inventory-reservation-failed", 1, InventoryReservationFailed.class)
                     .register("payment-processed", 1, PaymentProcessed.class)
                     .register("payment-failed", 1, PaymentFailed.class)
                     .register("order-cancelled", 1, OrderCancelled.class)
                     .register("inventory-released", 1, InventoryReleased.class)
                     .build()).build();
             FlowTracker asyncTracker = FlowTracker.builder(asyncBus, ORDER_FLOW).build().start(io.streamsaga.bus.StartPosition.EARLIEST)) {
            asyncBus.register("inventory", new Inventory(asyncBus, 900));
            asyncBus.register("payment", new Payment(asyncBus, 600));
            asyncBus.register("order", new Order(asyncBus));
            for (int i = 0; i < 300; i++) {
                long amount = i % 3 == 0 ? 100 : i % 3 == 1 ? 700 : 1000; // paid, payment fails, out of stock
                asyncBus.publish(Message.builder("order-created").key("o-" + i).type("order-created")
                        .payload(new OrderCreated("o-" + i, amount)).header(MessageHeaders.CORRELATION_ID, "c-" + i).build());
            }
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() ->
                    asyncTracker.outcomes().get(FlowStatus.SUCCEEDED) + asyncTracker.outcomes().get(FlowStatus.FAILED) == 300);
            assertEquals(100L, asyncTracker.outcomes().get(FlowStatus.SUCCEEDED));
            assertEquals(200L, asyncTracker.outcomes().get(FlowStatus.FAILED));
            // An outcome can be counted before the tracker's order-created consumer (another topic, another
            // thread) delivered that flow's first event, which then takes its place in the path by timestamp.
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                assertEquals(List.of("order-created", "inventory-reserved", "payment-failed", "order-cancelled",
                        "inventory-released"), asyncTracker.where("c-1").orElseThrow().path());
                assertEquals(List.of("order-created", "inventory-reservation-failed"),
                        asyncTracker.where("c-2").orElseThrow().path());
            });
        }
    }

    @Test
    void eventsOfSeveralTypesOnASharedTopicAreMatchedByType() {
        try (FlowTracker shared = FlowTracker.builder(bus, ORDER_FLOW).group("shared").topics("orders").build().start()) {
            Message created = Message.builder("orders").key("o-9").type("order-created").payload(new OrderCreated("o-9", 5))
                    .timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, "c-shared").build();
            bus.publish(created);
            bus.publish(Message.builder("orders").key("o-9").type("payment-processed").payload(new PaymentProcessed("o-9"))
                    .timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, "c-shared")
                    .header(MessageHeaders.CAUSATION_ID, created.id()).build());
            bus.publish(Message.builder("orders").key("o-9").type("unrelated-type").payload(new OrderCancelled("o-9"))
                    .timestamp(scheduler.now()).header(MessageHeaders.CORRELATION_ID, "c-shared").build());
            transport.drainAll();

            FlowInstance instance = shared.where("c-shared").orElseThrow();
            assertEquals(List.of("order-created", "payment-processed"), instance.path());
            assertEquals(FlowStatus.SUCCEEDED, instance.status());
        }
    }
}
