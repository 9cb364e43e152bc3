package io.streamsaga.samples.choreography;

import io.streamsaga.choreography.FlowStatus;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChoreographedOrderSampleTest {

    @Test
    void happyPathPaysTheOrderAndKeepsTheReservation() {
        ChoreographedOrderSample.Result result = ChoreographedOrderSample.run(false, false);
        assertEquals(FlowStatus.SUCCEEDED, result.instance().status());
        assertEquals(List.of("order-created", "inventory-reserved", "payment-processed"), result.instance().path());
        assertEquals("paid", result.orderStatus());
        assertTrue(result.inventoryReserved());
        assertTrue(result.report().contains("succeeded=1"));
    }

    @Test
    void paymentFailureCancelsTheOrderAndReleasesTheInventory() {
        ChoreographedOrderSample.Result result = ChoreographedOrderSample.run(true, false);
        assertEquals(FlowStatus.FAILED, result.instance().status());
        assertEquals(List.of("order-created", "inventory-reserved", "payment-failed", "order-cancelled", "inventory-released"),
                result.instance().path());
        assertEquals("cancelled", result.orderStatus());
        assertFalse(result.inventoryReserved());
        assertTrue(result.mermaid().contains("PaymentService->>OrderService: payment-failed"));
    }

    @Test
    void paymentServiceDownIsReportedStalled() {
        ChoreographedOrderSample.Result result = ChoreographedOrderSample.run(false, true);
        assertEquals(FlowStatus.STALLED, result.instance().status());
        assertTrue(result.report().contains("stalled order-42"));
    }
}
