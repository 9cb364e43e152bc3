package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kit's guard against a run that never settles fails a livelock (rounds at one virtual instant, the clock
 * never moving), not a long {@code advance} over an application's repeating timer: it used to fail after 100,000
 * timers in all, so advancing a day and more over a timer every second failed although nothing was stuck.
 */
class SagaTestKitLivelockTest {
    record Order(String id) {
    }

    record Ping(int n) {
    }

    record Pong(int n) {
    }

    private static TypeRegistry pingPongTypes() {
        return TypeRegistry.builder().register("ping", 1, Ping.class).register("pong", 1, Pong.class).build();
    }

    /** Two participants answering each other for ever, with no timer in between: the clock never moves. */
    private static SagaTestEnvironment pingPong(SagaTestEnvironment env) {
        env.bus().subscribe("ponger", "pings", Ping.class, (ping, ctx) -> env.bus().publish("pongs", "k", new Pong(ping.n() + 1)));
        env.bus().subscribe("pinger", "pongs", Pong.class, (pong, ctx) -> env.bus().publish("pings", "k", new Ping(pong.n() + 1)));
        return env;
    }

    /** An application's timer every {@code period}, from {@code period} on; counts its firings (cheap work). */
    static final class Ticker {
        private final SagaTestEnvironment env;
        private final Duration period;
        long ticks;

        Ticker(SagaTestEnvironment env, Duration period) {
            this.env = env;
            this.period = period;
            arm();
        }

        private void arm() {
            env.scheduler().schedule(period, () -> {
                ticks++;
                arm();
            });
        }
    }

    /** A saga that waits for ever (its stage never completes). */
    private static SagaDefinition<Order> waiting() {
        return SagaDefinition.builder("shop", Order.class)
                .step("wait").asyncAction((order, ctx) -> new CompletableFuture<Order>())
                .build();
    }

    @Test
    void aLongAdvanceOverARepeatingTimerRunsEveryFiringAndSucceeds() {
        Duration horizon = Duration.ofDays(2); // 172,800 firings: more than the old limit of 100,000 timers
        try (SagaRunReport<Ticker, Order> run = SagaTestKit.given(env -> new Ticker(env, Duration.ofSeconds(1)),
                ticker -> waiting(), new Order("o-1")).whenStarted()) {

            run.advance(horizon).expectStatus(SagaStatus.RUNNING);

            assertEquals(horizon.toSeconds(), run.fixture().ticks);
            assertEquals(1, run.environment().scheduler().pendingTasks(), "the next firing");
        }
    }

    @Test
    void aTaskReschedulingItselfAtTheSameInstantFailsTheAdvanceNamingTheInstant() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> {
            env.scheduler().schedule(Duration.ofSeconds(1), new Runnable() {
                @Override
                public void run() {
                    env.scheduler().schedule(Duration.ZERO, this); // for ever, the clock never moving
                }
            });
            return env;
        }, env -> waiting(), new Order("o-1")).whenStarted();

        AssertionError stuck = assertThrows(AssertionError.class, () -> run.advance(Duration.ofMinutes(1)));

        assertTrue(stuck.getMessage().contains("2026-01-01T00:00:01Z"), stuck.getMessage());
        assertTrue(stuck.getMessage().contains("without the virtual clock moving"), stuck.getMessage());
        assertTrue(run.isClosed(), "the run of an advance that failed left open");
    }

    @Test
    void settleOverATimerThatRepeatsForEverFailsAndPointsToAdvance() {
        SagaRunReport<Ticker, Order> run = SagaTestKit.given(env -> new Ticker(env, Duration.ofHours(1)),
                ticker -> waiting(), new Order("o-1")).whenStarted();

        AssertionError endless = assertThrows(AssertionError.class, run::settle);

        assertTrue(endless.getMessage().contains("advance"), endless.getMessage());
        assertTrue(run.isClosed(), "the run of a settle that failed left open");
    }

    @Test
    void handlersAnsweringEachOtherForEverAtOneInstantFailTheSettleNamingTheTopicsAndTypes() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(SagaTestKitLivelockTest::pingPong,
                env -> waiting(), new Order("o-1")).types(pingPongTypes()).whenStarted();
        run.environment().bus().publish("pings", "k", new Ping(0));

        AssertionError stuck = assertThrows(AssertionError.class, run::settle);

        for (String looped : new String[] {"pings", "pongs", "ping", "pong", "2026-01-01T00:00:00Z"}) {
            assertTrue(stuck.getMessage().contains(looped), stuck.getMessage());
        }
        assertTrue(run.isClosed(), "the run of a settle that failed left open");
    }

    @Test
    void handlersAnsweringEachOtherForEverAtOneInstantFailTheAdvanceWithinTheConfiguredBound() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> {
            pingPong(env);
            env.scheduler().schedule(Duration.ofSeconds(1), () -> env.bus().publish("pings", "k", new Ping(0)));
            return env;
        }, env -> waiting(), new Order("o-1")).types(pingPongTypes()).maxRoundsAtOneInstant(50).whenStarted();

        AssertionError stuck = assertThrows(AssertionError.class, () -> run.advance(Duration.ofMinutes(1)));

        assertTrue(stuck.getMessage().contains("more than 50 rounds"), stuck.getMessage());
        assertTrue(stuck.getMessage().contains("2026-01-01T00:00:01Z"), stuck.getMessage());
        assertTrue(stuck.getMessage().contains("topic 'pings' type 'ping'"), stuck.getMessage());
        assertTrue(stuck.getMessage().contains("topic 'pongs' type 'pong'"), stuck.getMessage());
        assertTrue(run.environment().transport().pendingCount() <= 1, "delivered far past the bound");
        assertTrue(run.isClosed(), "the run of an advance that failed left open");
    }

    @Test
    void manyDeliveriesAtOneInstantUnderTheConfiguredBoundSettle() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> {
            env.bus().subscribe("counter", "pings", Ping.class, (ping, ctx) -> {
                if (ping.n() < 40) {
                    env.bus().publish("pings", "k", new Ping(ping.n() + 1));
                }
            });
            return env;
        }, env -> waiting(), new Order("o-1")).types(pingPongTypes()).maxRoundsAtOneInstant(41).whenStarted();
        run.environment().bus().publish("pings", "k", new Ping(0));

        run.settle().expectStatus(SagaStatus.RUNNING); // 41 deliveries: within the bound

        assertEquals(41, run.environment().transport().messages("pings").size());
        run.close();
    }

    @Test
    void aBurstAtOneInstantOverTheBoundFailsNamingTheSettingToRaise() {
        SagaRunReport<SagaTestEnvironment, Order> run = SagaTestKit.given(env -> {
            env.bus().subscribe("counter", "pings", Ping.class, (ping, ctx) -> { });
            return env;
        }, env -> waiting(), new Order("o-1")).types(pingPongTypes()).maxRoundsAtOneInstant(50).whenStarted();
        for (int i = 0; i < 60; i++) { // a fan-out that ends, only larger than the bound
            run.environment().bus().publish("pings", "k", new Ping(i));
        }

        AssertionError burst = assertThrows(AssertionError.class, run::settle);

        assertTrue(burst.getMessage().contains("SagaTestKit.maxRoundsAtOneInstant(int)"), burst.getMessage());
    }

    @Test
    void theTimerCapNamesTheSettingToRaise() {
        SagaRunReport<Ticker, Order> run = SagaTestKit.given(env -> new Ticker(env, Duration.ofHours(1)),
                ticker -> waiting(), new Order("o-1")).maxTimersToSettle(10).whenStarted();

        AssertionError endless = assertThrows(AssertionError.class, run::settle);

        assertTrue(endless.getMessage().contains("SagaTestKit.maxTimersToSettle(int)"), endless.getMessage());
    }

    @Test
    void theTimerCapOfSettleIsConfigurable() {
        SagaRunReport<Ticker, Order> run = SagaTestKit.given(env -> new Ticker(env, Duration.ofHours(1)),
                ticker -> waiting(), new Order("o-1")).maxTimersToSettle(10).whenStarted();

        AssertionError endless = assertThrows(AssertionError.class, run::settle);

        assertTrue(endless.getMessage().startsWith("the run does not settle: 10 timers ran"), endless.getMessage());
        assertEquals(10, run.fixture().ticks);
    }

    @Test
    void boundsBelowOneAreRefusedQuotingTheValue() {
        SagaTestKit<Void, Order> kit = SagaTestKit.given(waiting(), new Order("o-1"));

        ConfigurationException rounds = assertThrows(ConfigurationException.class, () -> kit.maxRoundsAtOneInstant(0));
        ConfigurationException timers = assertThrows(ConfigurationException.class, () -> kit.maxTimersToSettle(-1));

        assertEquals("maxRoundsAtOneInstant must be at least 1, but was 0", rounds.getMessage());
        assertEquals("maxTimersToSettle must be at least 1, but was -1", timers.getMessage());
    }
}
