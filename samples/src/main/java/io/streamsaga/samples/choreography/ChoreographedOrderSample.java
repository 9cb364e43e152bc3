package io.streamsaga.samples.choreography;

import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowInstance;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The source's choreographed order saga (Order, Inventory and Payment services, no coordinator) with a
 * {@link FlowTracker} following it from the outside.
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java
 * -Dexec.mainClass=io.streamsaga.samples.choreography.ChoreographedOrderSample [-Dexec.args="--fail-payment"]}.
 * With {@code --fail-payment} the card is declined: payment-failed, order-cancelled, inventory-released.
 * With {@code --stall} the payment service is down and the tracker reports the order stalled at its
 * deadline (on a virtual clock).
 */
public final class ChoreographedOrderSample {

    /** The flow as the tracker knows it: who emits what, who reacts, what ends it. */
    public static final FlowDefinition ORDER_FLOW = FlowDefinition.builder("order-choreography")
            .event("order-created", "OrderService", "InventoryService")
            .event("inventory-reserved", "InventoryService", "PaymentService")
            .event("inventory-reservation-failed", "InventoryService")
            .event("payment-processed", "PaymentService", "OrderService")
            .event("payment-failed", "PaymentService", "OrderService")
            .event("order-cancelled", "OrderService", "InventoryService")
            .event("inventory-released", "InventoryService")
            .succeedsOn("payment-processed")
            .failsOn("inventory-reservation-failed", "inventory-released")
            .deadline(Duration.ofSeconds(30))
            .build();

    /** What happened to the one order of a run. */
    public record Result(FlowInstance instance, String orderStatus, boolean inventoryReserved, String report, String mermaid) {
    }

    private ChoreographedOrderSample() {
    }

    /** Places one order (amount 120) and lets the services react until quiet. */
    public static Result run(boolean failPayment, boolean stall) {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler clock = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport).types(OrderEvents.types()).scheduler(clock).build();
             FlowTracker tracker = FlowTracker.builder(bus, ORDER_FLOW).build().start()) {
            Services.OrderService orders = new Services.OrderService(bus);
            Services.InventoryService inventory = new Services.InventoryService(bus, Set.of("out-of-stock-item"));
            bus.register("order-service", orders);
            bus.register("inventory-service", inventory);
            if (!stall) {
                bus.register("payment-service", new Services.PaymentService(bus, failPayment ? 100 : 1_000));
            }
            tracker.onStalled(instance -> System.out.println("!! stalled at deadline: " + instance.correlationId()
                    + " last event " + instance.lastStep().orElseThrow().event()));

            String correlationId = orders.createOrder("42", List.of("book", "pen"), 120);
            transport.drainAll();
            clock.advance(ORDER_FLOW.deadline());

            FlowInstance instance = tracker.where(correlationId).orElseThrow();
            return new Result(instance, orders.status("42"), inventory.isReserved("42"), tracker.report(),
                    tracker.mermaid(instance));
        } finally {
            transport.close();
        }
    }

    public static void main(String[] args) {
        List<String> options = Arrays.asList(args);
        Result result = run(options.contains("--fail-payment"), options.contains("--stall"));
        System.out.println("where is order 42 now? " + result.instance().status() + " after " + result.instance().path());
        System.out.println("order status: " + result.orderStatus() + ", inventory reserved: " + result.inventoryReserved());
        System.out.println(result.report());
        System.out.println();
        System.out.println("```mermaid");
        System.out.print(result.mermaid());
        System.out.println("```");
    }
}
