package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator call refused because of the saga's state (or its arguments) leaves nothing behind: a later
 * {@code recover()} still resumes the saga and {@code result()} still answers.
 */
class OperatorCallsInTheWrongStateTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final AtomicInteger releases = new AtomicInteger();

    /** reserve (its compensation fails once, retried a minute later), then charge, which always fails. */
    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("wrong-state-saga", Data.class)
                .step("reserve").action((d, ctx) -> d)
                .compensation((d, ctx) -> {
                    if (releases.incrementAndGet() == 1) {
                        throw new IllegalStateException("release refused once");
                    }
                })
                .compensationRetry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofMinutes(1)).maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("declined");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    private SagaOrchestrator orchestrator() {
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition()).build();
    }

    @Test
    void aRefusedCancelBeforeRecoverDoesNotKeepRecoverFromResumingACompensatingSaga() {
        SagaOrchestrator first = orchestrator();
        first.start(definition(), "saga-1", null, new Data("a"));
        assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status());
        first.close();

        SagaOrchestrator second = orchestrator();
        assertThrows(SagaException.class, () -> second.cancel("saga-1")); // compensating: cannot be cancelled
        SagaOrchestrator.RecoveryReport recovery = second.recover();

        assertEquals(List.of("saga-1"), recovery.resumed());
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        second.close();
    }

    @Test
    void aRefusedOperatorCallOnAFinishedSagaLeavesItsResultAnswerable() {
        SagaOrchestrator orchestrator = orchestrator();
        orchestrator.start(definition(), "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());

        assertThrows(SagaException.class, () -> orchestrator.markResolved("saga-1"));
        assertThrows(SagaException.class, () -> orchestrator.retryCompensation("saga-1"));
        assertThrows(SagaException.class, () -> orchestrator.cancel("saga-1"));
        assertThrows(SagaException.class, () -> orchestrator.skipCompensation("saga-1", "reserve"));

        CompletableFuture<SagaResult<Object>> result = orchestrator.result("saga-1").toCompletableFuture();
        assertTrue(result.isDone(), "result() of a finished saga must be complete");
        assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
        orchestrator.close();
    }
}
