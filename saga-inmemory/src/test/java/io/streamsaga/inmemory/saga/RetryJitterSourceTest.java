package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.LockCheckingRandom;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The orchestrator's {@code retryJitter} source decides the jittered backoff of the retries it schedules. */
class RetryJitterSourceTest {
    record Data(String id) {
    }

    private static final RetryPolicy JITTERED = RetryPolicy.builder().maxAttempts(4).initialBackoff(Duration.ofSeconds(10))
            .multiplier(1).jitter(1.0).build();
    private static final Instant START = Instant.parse("2026-01-01T00:00:00Z");

    /** The instants of the attempts of a step that fails its first three, on an orchestrator with {@code seed}. */
    private static List<Instant> attemptsWithSeed(long seed) {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<Instant> attempts = new ArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("jittered", Data.class)
                .step("flaky").action((d, ctx) -> {
                    attempts.add(scheduler.now());
                    if (attempts.size() < 4) {
                        throw new IllegalStateException("attempt " + attempts.size() + " fails");
                    }
                    return d;
                }).retry(JITTERED)
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .retryJitter(new Random(seed)).register(definition).build()) {
            orchestrator.start(definition, "saga-1", null, new Data("a"));
            scheduler.advance(Duration.ofMinutes(5));
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        }
        return attempts;
    }

    @Test
    void aSeededJitterSourceGivesTheRetriesTheDelaysItsSequenceDecidesSoRunsWithOneSeedRepeat() {
        List<Instant> first = attemptsWithSeed(42);

        Random expected = new Random(42);
        Instant at = START;
        List<Instant> computed = new ArrayList<>(List.of(at));
        for (int next = 2; next <= 4; next++) {
            at = at.plus(JITTERED.delayBefore(next, expected));
            computed.add(at);
        }
        assertEquals(computed, first);
        assertEquals(first, attemptsWithSeed(42));
        assertNotEquals(first, attemptsWithSeed(43)); // the jitter is drawn from the source given, not elsewhere
    }

    @Test
    void aJitterSourceThatIsNotThreadSafeIsDrawnFromOnlyUnderItsLock() {
        LockCheckingRandom jitter = new LockCheckingRandom();
        VirtualScheduler scheduler = new VirtualScheduler(START);
        int[] calls = new int[2];
        SagaDefinition<Data> definition = SagaDefinition.builder("jittered", Data.class)
                .step("flaky").action((d, ctx) -> {
                    if (++calls[0] < 4) {
                        throw new IllegalStateException("attempt " + calls[0] + " fails");
                    }
                    return d;
                }).retry(JITTERED)
                .compensation((d, ctx) -> {
                    if (++calls[1] == 1) {
                        throw new IllegalStateException("the first undo fails");
                    }
                }).compensationRetry(JITTERED)
                .step("undone").action((d, ctx) -> {
                    throw new IllegalStateException("always fails");
                })
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .retryJitter(jitter).register(definition).build()) {
            orchestrator.start(definition, "saga-1", null, new Data("a"));
            scheduler.advance(Duration.ofMinutes(5));
            assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        }

        assertEquals(4, jitter.draws()); // one before each of flaky's retries, and before its compensation's
        assertEquals(0, jitter.drawsWithoutTheLock()); // so sagas driven on several threads never draw at once
    }

    @Test
    void aNullJitterSourceIsRefused() {
        NullPointerException refused = assertThrows(NullPointerException.class,
                () -> SagaOrchestrator.builder().retryJitter(null));
        assertEquals("random", refused.getMessage());
    }
}
