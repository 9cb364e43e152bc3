package io.streamsaga.inmemory.saga;

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
}
