package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Asynchronous compensations: awaited without blocking, failed attempts retried, safe across crashes. */
class AsyncCompensationTest {
    record Order(String id) {
    }

    private static SagaDefinition<Order> shipThenPayFails(List<String> undone, AsyncShipmentCancel cancel) {
        return SagaDefinition.builder("order", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> undone.add("reserve"))
                .step("ship").action((order, ctx) -> order).asyncCompensation((order, ctx) -> {
                    undone.add("ship");
                    return cancel.cancel();
                }).compensationRetry(RetryPolicy.NONE)
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
    }

    @FunctionalInterface
    interface AsyncShipmentCancel {
        CompletableFuture<?> cancel();
    }

    @Test
    void theSagaWaitsForTheStageWithoutBlockingAndCompensatesTheStepsBeforeItOnlyThen() {
        List<String> undone = new CopyOnWriteArrayList<>();
        CompletableFuture<String> shipmentCancelled = new CompletableFuture<>();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            CompletableFuture<SagaResult<Order>> result = orchestrator
                    .start(shipThenPayFails(undone, () -> shipmentCancelled), "order-1", null, new Order("o-1"))
                    .toCompletableFuture();

            // start returned while the shipment's cancellation is still pending
            assertFalse(result.isDone());
            assertEquals(List.of("ship"), undone);
            assertEquals(SagaStatus.COMPENSATING, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(StepStatus.COMPENSATING, orchestrator.find("order-1").orElseThrow().step("ship").orElseThrow().status());

            shipmentCancelled.complete("cancelled");

            SagaResult<Order> outcome = result.join();
            assertTrue(outcome.isCompensated(), outcome.toString());
            assertEquals("pay", outcome.failure().step());
            assertEquals(List.of("ship", "reserve"), undone);
        }
    }

    @Test
    void aStageThatFailsIsAFailedAttemptAndTheOperatorCanRetryIt() {
        List<String> undone = new CopyOnWriteArrayList<>();
        AtomicInteger calls = new AtomicInteger();
        AsyncShipmentCancel failsOnce = () -> calls.incrementAndGet() == 1
                ? CompletableFuture.failedFuture(new IllegalStateException("carrier unreachable"))
                : CompletableFuture.completedFuture(null);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            SagaResult<Order> first = orchestrator.start(shipThenPayFails(undone, failsOnce), "order-2", null, new Order("o-2"))
                    .toCompletableFuture().join();
            assertTrue(first.needsAttention(), first.toString());
            assertEquals("ship", first.compensationFailure().step());
            assertEquals("carrier unreachable", first.compensationFailure().message());
            assertEquals(List.of("ship"), undone); // the step before waits: nothing else undone

            SagaResult<Object> retried = orchestrator.retryCompensation("order-2").toCompletableFuture().join();

            assertTrue(retried.isCompensated(), retried.toString());
            assertEquals(List.of("ship", "ship", "reserve"), undone);
            assertEquals(2, calls.get());
            assertEquals(StepStatus.COMPENSATED, orchestrator.find("order-2").orElseThrow().step("ship").orElseThrow().status());
        }
    }

    @Test
    void aCompensationThatThrowsOrReturnsNoStageFailsItsAttempt() {
        List<String> undone = new CopyOnWriteArrayList<>();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            SagaResult<Order> thrown = orchestrator.start(shipThenPayFails(undone, () -> {
                throw new IllegalArgumentException("no such shipment");
            }), new Order("o-3")).toCompletableFuture().join();
            SagaResult<Order> noStage = orchestrator.start(shipThenPayFails(undone, () -> null), new Order("o-4"))
                    .toCompletableFuture().join();

            assertTrue(thrown.needsAttention(), thrown.toString());
            assertEquals(IllegalArgumentException.class.getName(), thrown.compensationFailure().errorClass());
            assertTrue(noStage.needsAttention(), noStage.toString());
            assertTrue(noStage.compensationFailure().message().contains("returned null instead of a stage"),
                    noStage.compensationFailure().toString());
        }
    }

    @Test
    void aStageThatOverrunsTheStepsTimeoutFailsItsAttemptAndALateOutcomeIsIgnored() {
        VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
        List<String> undone = new CopyOnWriteArrayList<>();
        CompletableFuture<String> late = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("reserve").action((order, ctx) -> order).compensation((order, ctx) -> undone.add("reserve"))
                .step("ship").action((order, ctx) -> order).asyncCompensation((order, ctx) -> late)
                .compensationRetry(RetryPolicy.NONE).timeout(Duration.ofSeconds(30))
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(scheduler)
                .build()) {
            CompletableFuture<SagaResult<Order>> result = orchestrator.start(definition, "order-6", null, new Order("o-6"))
                    .toCompletableFuture();
            scheduler.advance(Duration.ofSeconds(29));
            assertFalse(result.isDone());

            scheduler.advance(Duration.ofSeconds(2));

            SagaResult<Order> outcome = result.join();
            assertTrue(outcome.needsAttention(), outcome.toString());
            assertEquals(SagaTimeoutException.class.getName(), outcome.compensationFailure().errorClass());
            late.complete("too late");
            assertEquals(StepStatus.COMPENSATION_FAILED, orchestrator.find("order-6").orElseThrow().step("ship").orElseThrow().status());
            assertEquals(List.of(), undone);
            assertEquals(0, scheduler.pendingTasks());
        }
    }

    /** The carrier: a cancellation takes effect once per idempotency key. */
    static final class Carrier {
        final Set<String> shipped = new HashSet<>();
        final Set<String> cancelled = new HashSet<>();
        int cancellations;
    }

    @Test
    void crashExplorationHoldsForASagaWithAnAsynchronousCompensation() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(env -> new Carrier(), carrier -> SagaDefinition.builder("shipping", Order.class)
                        .step("ship").action((order, ctx) -> {
                            carrier.shipped.add(ctx.idempotencyKey());
                            return order;
                        }).asyncCompensation((order, ctx) -> {
                            if (carrier.shipped.contains(ctx.idempotencyKey()) && carrier.cancelled.add(ctx.idempotencyKey())) {
                                carrier.cancellations++;
                            }
                            return CompletableFuture.completedFuture(null);
                        })
                        .step("invoice").action((order, ctx) -> order)
                        .build(), new Order("o-5"))
                .invariant(AsyncCompensationTest::consistent)
                .explore();

        assertTrue(report.violations().isEmpty(), report.violations().toString());
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().startsWith("compensation of ship")),
                report.scenarios().toString());
    }

    private static void consistent(Carrier carrier, SagaRunReport<Carrier, Order> run) {
        assertTrue(carrier.cancellations <= 1, "cancelled " + carrier.cancellations + " times");
        if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(0, carrier.cancellations);
        } else {
            assertEquals(carrier.shipped.size(), carrier.cancellations, "shipments vs cancellations");
        }
    }
}
