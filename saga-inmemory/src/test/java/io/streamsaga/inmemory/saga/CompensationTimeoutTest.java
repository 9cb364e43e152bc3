package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A compensation may have its own timeout ({@code compensationTimeout}), for an undo slower than the action
 * or a remote one: it bounds each attempt of an asynchronous, a remote and a parallel member's compensation
 * in place of the step's timeout, which still bounds them when none is set.
 */
class CompensationTimeoutTest {
    record Order(String id) {
    }

    record CancelShipment(String id) {
    }

    record ShipmentCancelled(String id) {
    }

    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration COMPENSATION_TIMEOUT = Duration.ofMinutes(5);

    private final VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("cancel-shipment", 1, CancelShipment.class)
                    .register("shipment-cancelled", 1, ShipmentCancelled.class).build())
            .build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /**
     * Step "ship" (its action asynchronous, bounded by the step's timeout) undone as {@code compensation} declares,
     * then "pay" fails: the compensation of "ship" never completes.
     */
    private static SagaDefinition<Order> shipThenPayFails(UnaryOperator<SagaDefinition.StepBuilder<Order>> compensation) {
        SagaDefinition.StepBuilder<Order> ship = SagaDefinition.builder("order", Order.class)
                .step("ship").asyncAction((order, ctx) -> CompletableFuture.completedFuture(order))
                .compensationRetry(RetryPolicy.NONE).timeout(STEP_TIMEOUT);
        return compensation.apply(ship)
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
    }

    /** Starts the saga, then asserts its compensation is still awaited just before {@code timeout} and failed by it. */
    private void compensationTimesOutAfter(SagaDefinition<Order> definition, Duration timeout) {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .scheduler(scheduler).parallelExecutor(task -> { }) // a member's compensation never runs
                .build()) {
            CompletableFuture<SagaResult<Order>> result = orchestrator.start(definition, "order-1", null, new Order("o-1"))
                    .toCompletableFuture();
            scheduler.advance(timeout.minusSeconds(1));
            assertFalse(result.isDone());
            assertEquals(StepStatus.COMPENSATING, orchestrator.find("order-1").orElseThrow().step("ship").orElseThrow().status());

            scheduler.advance(Duration.ofSeconds(1));

            SagaResult<Order> outcome = result.join();
            assertTrue(outcome.needsAttention(), outcome.toString());
            assertEquals(SagaTimeoutException.class.getName(), outcome.compensationFailure().errorClass());
            assertTrue(outcome.compensationFailure().message().endsWith("timed out after " + timeout),
                    outcome.compensationFailure().message());
        }
    }

    @Test
    void anAsynchronousCompensationTimesOutByItsOwnTimeout() {
        compensationTimesOutAfter(shipThenPayFails(ship -> ship
                .asyncCompensation((order, ctx) -> new CompletableFuture<>())
                .compensationTimeout(COMPENSATION_TIMEOUT)), COMPENSATION_TIMEOUT);
    }

    @Test
    void aRemoteCompensationTimesOutByItsOwnTimeout() {
        compensationTimesOutAfter(shipThenPayFails(ship -> ship
                .compensationCommand("shipment-commands", (order, ctx) -> new CancelShipment(order.id()))
                .onCompensationReply(ShipmentCancelled.class, (order, reply) -> { }) // never replied to
                .compensationTimeout(COMPENSATION_TIMEOUT)), COMPENSATION_TIMEOUT);
    }

    @Test
    void aParallelMembersCompensationTimesOutByItsOwnTimeout() {
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .parallel(group -> {
                    group.step("ship").asyncAction((order, ctx) -> CompletableFuture.completedFuture(order))
                            .compensation((order, ctx) -> { })
                            .compensationRetry(RetryPolicy.NONE).timeout(STEP_TIMEOUT)
                            .compensationTimeout(COMPENSATION_TIMEOUT);
                    group.step("invoice").asyncAction((order, ctx) -> CompletableFuture.completedFuture(order));
                })
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();

        compensationTimesOutAfter(definition, COMPENSATION_TIMEOUT);
    }

    @Test
    void withoutItsOwnTimeoutACompensationIsStillBoundedByTheStepsTimeout() {
        SagaDefinition<Order> definition = shipThenPayFails(ship -> ship
                .asyncCompensation((order, ctx) -> new CompletableFuture<>()));

        assertEquals(STEP_TIMEOUT, definition.step("ship").compensationTimeout());
        compensationTimesOutAfter(definition, STEP_TIMEOUT);
    }
}
