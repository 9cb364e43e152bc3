package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The crash explorer's runs draw the retry jitter from a seeded source: a saga whose retry timer races another timer
 * runs the same way in every exploration of one seed.
 */
class JitterSeedExplorationTest {
    record Doc(List<String> marks) {
    }

    /**
     * The effects applied, by idempotency key; a parallel member's completion comes from a timer 10 s on, which may
     * fire after a crash and a compensation: an undone key leaves a tombstone, so a late apply does nothing.
     */
    static final class Effects {
        final SagaTestEnvironment env;
        final Set<String> applied = new HashSet<>();
        final Set<String> undone = new HashSet<>();

        Effects(SagaTestEnvironment env) {
            this.env = env;
        }

        synchronized Doc apply(Doc d, String key) {
            if (!undone.contains(key)) {
                applied.add(key);
            }
            return d;
        }

        synchronized void undo(String key) {
            applied.remove(key);
            undone.add(key);
        }
    }

    /**
     * A parallel group: {@code slow} completes on a timer 10 s after it starts, {@code flaky} is retried after a backoff
     * of 10 s spread by up to 100 % either way, so whether its retry comes before or after slow's completion (and so
     * the order of their writes) is the jitter's draw.
     */
    static SagaDefinition<Doc> racing(Effects e) {
        return SagaDefinition.builder("racing", Doc.class)
                .parallel(g -> {
                    g.step("slow").asyncAction((d, ctx) -> {
                        CompletableFuture<Doc> done = new CompletableFuture<>();
                        e.env.scheduler().schedule(Duration.ofSeconds(10), () -> done.complete(e.apply(d, ctx.idempotencyKey())));
                        return done;
                    }).compensation((d, ctx) -> e.undo(ctx.idempotencyKey()))
                            .timeout(Duration.ofMinutes(1));
                    g.step("flaky").action((d, ctx) -> e.apply(d, ctx.idempotencyKey()))
                            .compensation((d, ctx) -> e.undo(ctx.idempotencyKey()))
                            .retry(RetryPolicy.builder().maxAttempts(4).initialBackoff(Duration.ofSeconds(10)).multiplier(1)
                                    .jitter(1.0).build());
                    g.merge((current, member) -> current);
                })
                .step("finish").action((d, ctx) -> e.apply(d, ctx.idempotencyKey()))
                .compensation((d, ctx) -> e.undo(ctx.idempotencyKey()))
                .build();
    }

    private static void consistent(Effects e, SagaRunReport<Effects, Doc> run) {
        if (run.status() == SagaStatus.COMPENSATED) {
            assertEquals(Set.of(), e.applied, "effects left after compensation");
        } else if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(3, e.applied.size(), "effects of a completed saga: " + e.applied);
        }
    }

    private static ExplorationReport explore(long seed) {
        return SagaCrashExplorer.forSaga(Effects::new, JitterSeedExplorationTest::racing, new Doc(List.of()))
                .seed(seed)
                .invariant(JitterSeedExplorationTest::consistent)
                .explore();
    }

    private static List<String> names(ExplorationReport report) {
        return report.scenarios().stream().map(ExplorationReport.Scenario::name).toList();
    }

    /** The steps whose success the run stored, in order. */
    private static List<String> succeeded(SagaRunReport<Effects, Doc> run) {
        return run.history().stream().filter(t -> t.type() == TransitionType.STEP_SUCCEEDED).map(SagaTransition::step)
                .toList();
    }

    private static SagaTestKit<Effects, Doc> flakyOnce() {
        return SagaTestKit.given(Effects::new, JitterSeedExplorationTest::racing, new Doc(List.of()))
                .failStep("flaky", FailureMode.once());
    }

    @Test
    void theKitsRunsDrawTheRetryJitterFromTheirSeedSoOneSeedRepeatsTheOrderOfRacingTimers() {
        // seed 0, the default: flaky's retry comes before slow's completion at 10 s; seed 1: after it
        List<String> byDefault = succeeded(flakyOnce().whenRun());

        assertEquals(List.of("flaky", "slow", "finish"), byDefault);
        assertEquals(byDefault, succeeded(flakyOnce().seed(0).whenRun()));
        assertEquals(List.of("slow", "flaky", "finish"), succeeded(flakyOnce().seed(1).whenRun()));
        assertEquals(List.of("slow", "flaky", "finish"), succeeded(flakyOnce().seed(1).whenRun()));
    }

    @Test
    void twoExplorationsOfOneSeedRunTheSameScenariosTheSameWayWhereTheJitterOrdersTheTimers() {
        ExplorationReport first = explore(3);
        ExplorationReport second = explore(3);

        assertEquals(3, first.seed());
        assertEquals(first.scenarios(), second.scenarios());
        // each crash run repeats the run its crash point was taken from: none crashed elsewhere
        assertTrue(first.scenarios().stream().noneMatch(s -> s.name().contains("not deterministic")),
                first.scenarios().toString());
        // the jitter matters here: another seed orders flaky's retries and slow's completion otherwise
        assertNotEquals(names(first), names(explore(1)));
    }

    @Test
    void aFailingExplorationNamesItsSeed() {
        AssertionError error = assertThrows(AssertionError.class, () -> SagaCrashExplorer
                .forSaga(Effects::new, JitterSeedExplorationTest::racing, new Doc(List.of()))
                .seed(5)
                .invariant((e, run) -> {
                    throw new AssertionError("the application's invariant fails");
                })
                .explore());

        assertTrue(error.getMessage().startsWith("crash exploration of saga 'racing' with retry jitter seed 5 (.seed(5) runs"
                + " its scenarios again) found "), error.getMessage());
    }
}
