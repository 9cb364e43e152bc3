package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** Past its pivot a saga cannot go back (docs/sagas.md, Step roles): a cancellation does not undo the steps before it. */
class CancelAfterThePivotTest {
    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> released = new CopyOnWriteArrayList<>();
    private final AtomicInteger shipAttempts = new AtomicInteger();

    @Test
    void aSagaPastItsPivotIsNotCancelledAndNothingBeforeThePivotIsCompensated() {
        SagaDefinition<Data> definition = SagaDefinition.builder("pivot-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> released.add(ctx.idempotencyKey()))
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    if (shipAttempts.incrementAndGet() == 1) {
                        throw new IllegalStateException("carrier down");
                    }
                    return d;
                })
                .retry(RetryPolicy.builder().maxAttempts(5).initialBackoff(Duration.ofMinutes(1))
                        .maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status()); // the charge is taken, ship retries

        SagaException refused = null;
        try {
            orchestrator.cancel("saga-1");
        } catch (SagaException e) {
            refused = e;
        }
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(List.of(), released, "a step before the pivot was compensated after the pivot succeeded");
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertNotNull(refused, "cancel() past the pivot must be refused");
        orchestrator.close();
    }

    @Test
    void aCancelWhileThePivotRunsDoesNotUndoTheStepsBeforeAPivotThatThenSucceeds() {
        CompletableFuture<Data> charge = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("pivot-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> released.add(ctx.idempotencyKey()))
                .pivot("charge").asyncAction((d, ctx) -> charge).timeout(Duration.ofMinutes(5))
                .retriable("ship").action((d, ctx) -> {
                    shipAttempts.incrementAndGet();
                    return d;
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));

        SagaException refused = null;
        try {
            orchestrator.cancel("saga-1"); // the charge is in flight: its outcome decides whether the saga can go back
        } catch (SagaException e) {
            refused = e;
        }
        charge.complete(new Data("charged"));
        scheduler.advance(Duration.ofMinutes(10));

        assertEquals(List.of(), released, "the reservation was released though the charge, the pivot, succeeded: "
                + store.history("saga-1"));
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, shipAttempts.get());
        assertNotNull(refused, "cancel() while the pivot runs must be refused: once it succeeds the saga cannot go back");
        orchestrator.close();
    }

    @Test
    void aCancelWhileAPivotWhoseAttemptTimedOutWaitsForItsRetryIsRefusedSoTheStepsBeforeTheChargeAreNotUndone() {
        List<CompletableFuture<Data>> charges = new CopyOnWriteArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("pivot-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> released.add(ctx.idempotencyKey()))
                .pivot("charge").asyncAction((d, ctx) -> {
                    CompletableFuture<Data> charge = new CompletableFuture<>();
                    charges.add(charge);
                    return charges.size() == 1 ? charge : CompletableFuture.completedFuture(d); // idempotent retry
                }).timeout(Duration.ofMinutes(1))
                .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMinutes(5)).jitter(0).build())
                .retriable("ship").action((d, ctx) -> {
                    shipAttempts.incrementAndGet();
                    return d;
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofMinutes(1)); // the first charge times out, not interrupted: its retry waits 5 min
        charges.get(0).complete(new Data("charged")); // it took the charge after all (its late result is ignored)

        SagaException refused = null;
        try {
            orchestrator.cancel("saga-1");
        } catch (SagaException e) {
            refused = e;
        }
        scheduler.advance(Duration.ofMinutes(10));

        assertEquals(List.of(), released, "the reservation was released though the charge, the pivot, may have been "
                + "taken by its attempt that timed out: " + store.history("saga-1"));
        assertNotNull(refused, "cancel() while a pivot that may have taken effect waits for its retry must be refused");
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, shipAttempts.get());
        orchestrator.close();
    }
}
