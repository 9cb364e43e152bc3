package io.streamsaga.samples.quickstart;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class QuickStartTest {
    @Test
    void theReadmeQuickStartDeliversThePaymentToAnalytics() throws InterruptedException {
        assertEquals(List.of("order-1"), QuickStart.run());
    }
}
