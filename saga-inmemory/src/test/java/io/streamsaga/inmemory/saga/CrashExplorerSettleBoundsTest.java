package io.streamsaga.inmemory.saga;

import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The crash explorer settles each scenario with the kit's bounds, and is configured like the kit: its
 * maxRoundsAtOneInstant and maxTimersToSettle are the kit's (SagaTestKitLivelockTest), not fixed defaults.
 */
class CrashExplorerSettleBoundsTest {
    record Order(String id) {
    }

    record Ping(int n) {
    }

    /** A saga whose one step publishes {@code burst} pings at once (a fan-out that ends). */
    private static SagaDefinition<Order> fanOut(SagaTestEnvironment env, int burst) {
        env.bus().subscribe("counter", "pings", Ping.class, (ping, ctx) -> { });
        return SagaDefinition.builder("fan-out", Order.class)
                .step("publish").action((order, ctx) -> {
                    for (int i = 0; i < burst; i++) {
                        env.bus().publish("pings", order.id(), new Ping(i));
                    }
                    return order;
                })
                .compensation((order, ctx) -> { })
                .build();
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder().register("ping", 1, Ping.class).build();
    }

    @Test
    void theExplorerFailsABurstOverItsConfiguredBoundNamingIt() {
        SagaCrashExplorer<SagaTestEnvironment, Order> explorer = SagaCrashExplorer.<SagaTestEnvironment, Order>forSaga(
                env -> env, env -> fanOut(env, 60), new Order("o-1")).types(types()).maxRoundsAtOneInstant(50);

        AssertionError failed = assertThrows(AssertionError.class, explorer::explore);

        assertNotNull(failed.getCause(), failed.toString());
        assertTrue(failed.getCause().getMessage().contains("more than 50 rounds"), failed.getCause().getMessage());
    }

    @Test
    void theExplorerSettlesABurstUnderItsConfiguredBound() {
        SagaCrashExplorer.<SagaTestEnvironment, Order>forSaga(env -> env, env -> fanOut(env, 60), new Order("o-1"))
                .types(types()).maxRoundsAtOneInstant(120).explore(); // a recovered run publishes the burst again
    }

    @Test
    void theExplorerHonoursItsTimerCap() {
        SagaCrashExplorer<SagaTestEnvironment, Order> explorer = SagaCrashExplorer.<SagaTestEnvironment, Order>forSaga(
                env -> {
                    for (int i = 1; i <= 3; i++) { // three timers, each at its own instant
                        env.scheduler().schedule(Duration.ofSeconds(i), () -> { });
                    }
                    return env;
                }, env -> fanOut(env, 0), new Order("o-1")).types(types()).maxTimersToSettle(2);

        AssertionError failed = assertThrows(AssertionError.class, explorer::explore);

        assertNotNull(failed.getCause(), failed.toString());
        assertTrue(failed.getCause().getMessage().contains("2 timers ran"), failed.getCause().getMessage());
    }
}
