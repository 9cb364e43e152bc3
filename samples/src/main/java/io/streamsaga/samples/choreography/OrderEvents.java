package io.streamsaga.samples.choreography;

import io.streamsaga.codec.TypeRegistry;

import java.util.List;

/** The events of the choreographed order flow, with their stable type ids (equal to their topics). */
public final class OrderEvents {
    private OrderEvents() {
    }

    public record OrderCreated(String orderId, List<String> items, long amount) {
    }

    public record InventoryReserved(String orderId, long amount) {
    }

    public record InventoryReservationFailed(String orderId, String reason) {
    }

    public record PaymentProcessed(String orderId) {
    }

    public record PaymentFailed(String orderId, String reason) {
    }

    public record OrderCancelled(String orderId, String reason) {
    }

    public record InventoryReleased(String orderId) {
    }

    /** The type registry of every event of the flow. */
    public static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("order-created", 1, OrderCreated.class)
                .register("inventory-reserved", 1, InventoryReserved.class)
                .register("inventory-reservation-failed", 1, InventoryReservationFailed.class)
                .register("payment-processed", 1, PaymentProcessed.class)
                .register("payment-failed", 1, PaymentFailed.class)
                .register("order-cancelled", 1, OrderCancelled.class)
                .register("inventory-released", 1, InventoryReleased.class)
                .build();
    }
}
