package io.streamsaga.samples.choreography;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.samples.choreography.OrderEvents.InventoryReleased;
import io.streamsaga.samples.choreography.OrderEvents.InventoryReservationFailed;
import io.streamsaga.samples.choreography.OrderEvents.InventoryReserved;
import io.streamsaga.samples.choreography.OrderEvents.OrderCancelled;
import io.streamsaga.samples.choreography.OrderEvents.OrderCreated;
import io.streamsaga.samples.choreography.OrderEvents.PaymentFailed;
import io.streamsaga.samples.choreography.OrderEvents.PaymentProcessed;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The three services of the source's choreography, each only publishing and reacting to events: no
 * coordinator, and correlation ids travel with the events because the bus propagates them.
 */
public final class Services {
    private Services() {
    }

    /** Order service: creates orders, cancels them when payment fails. */
    public static final class OrderService {
        private final EventBus bus;
        private final Map<String, String> status = new ConcurrentHashMap<>();

        public OrderService(EventBus bus) {
            this.bus = bus;
        }

        /**
         * Saves the order and emits {@code order-created}; its correlation id ({@code order-<id>}) travels
         * with every event the other services emit in reaction.
         */
        public String createOrder(String orderId, java.util.List<String> items, long amount) {
            status.put(orderId, "created");
            String correlationId = "order-" + orderId;
            bus.publish("order-created", orderId, new OrderCreated(orderId, items, amount),
                    Map.of(MessageHeaders.CORRELATION_ID, correlationId));
            return correlationId;
        }

        @EventPattern("payment-failed")
        public CompletionStage<RecordPosition> handlePaymentFailed(PaymentFailed event) {
            status.put(event.orderId(), "cancelled");
            return bus.publish("order-cancelled", event.orderId(), new OrderCancelled(event.orderId(), event.reason()));
        }

        @EventPattern("payment-processed")
        public void handlePaymentProcessed(PaymentProcessed event) {
            status.put(event.orderId(), "paid");
        }

        public String status(String orderId) {
            return status.get(orderId);
        }
    }

    /** Inventory service: reserves stock for new orders, releases it for cancelled ones. */
    public static final class InventoryService {
        private final EventBus bus;
        private final Set<String> outOfStock;
        private final Map<String, Boolean> reserved = new ConcurrentHashMap<>();

        public InventoryService(EventBus bus, Set<String> outOfStock) {
            this.bus = bus;
            this.outOfStock = Set.copyOf(outOfStock);
        }

        // The bus waits for a handler's publishes, returned or not: a publish that fails (an event class left out
        // of the registry, a record the broker refused) fails the handler, retried and then dead-lettered.
        @EventPattern("order-created")
        public CompletionStage<RecordPosition> reserveInventory(OrderCreated event) {
            for (String item : event.items()) {
                if (outOfStock.contains(item)) {
                    return bus.publish("inventory-reservation-failed", event.orderId(),
                            new InventoryReservationFailed(event.orderId(), item + " is out of stock"));
                }
            }
            reserved.put(event.orderId(), true);
            return bus.publish("inventory-reserved", event.orderId(), new InventoryReserved(event.orderId(), event.amount()));
        }

        @EventPattern("order-cancelled")
        public CompletionStage<RecordPosition> releaseInventory(OrderCancelled event) {
            reserved.remove(event.orderId());
            return bus.publish("inventory-released", event.orderId(), new InventoryReleased(event.orderId()));
        }

        public boolean isReserved(String orderId) {
            return reserved.containsKey(orderId);
        }
    }

    /** Payment service: charges reserved orders up to a card limit. */
    public static final class PaymentService {
        private final EventBus bus;
        private final long cardLimit;

        public PaymentService(EventBus bus, long cardLimit) {
            this.bus = bus;
            this.cardLimit = cardLimit;
        }

        @EventPattern("inventory-reserved")
        public CompletionStage<RecordPosition> processPayment(InventoryReserved event) {
            if (event.amount() > cardLimit) {
                return bus.publish("payment-failed", event.orderId(), new PaymentFailed(event.orderId(), "card declined"));
            }
            return bus.publish("payment-processed", event.orderId(), new PaymentProcessed(event.orderId()));
        }
    }
}
