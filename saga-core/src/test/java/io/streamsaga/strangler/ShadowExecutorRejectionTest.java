package io.streamsaga.strangler;

import org.junit.jupiter.api.Test;

import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * StranglerGateway: "In SHADOW the gateway calls both ... returns the legacy answer"; the new side never
 * reaches the caller. A saturated (or shut down) shadow executor must not turn a served legacy answer
 * into an exception for the caller.
 */
class ShadowExecutorRejectionTest {
    @Test
    void aShadowExecutorThatRejectsTheShadowCallStillReturnsTheLegacyAnswer() throws Exception {
        AtomicInteger legacyCalls = new AtomicInteger();
        StranglerGateway<String, String> gateway = StranglerGateway.<String, String>builder(
                        request -> "legacy:" + legacyCalls.incrementAndGet(), request -> "modern", request -> "orders")
                .rules(RoutingRules.allLegacy().withRoute("orders", Target.SHADOW))
                .shadowExecutor(task -> {
                    throw new RejectedExecutionException("shadow pool saturated");
                })
                .build();

        assertEquals("legacy:1", gateway.handle("order-1"));
        assertEquals(1, legacyCalls.get());
    }
}
