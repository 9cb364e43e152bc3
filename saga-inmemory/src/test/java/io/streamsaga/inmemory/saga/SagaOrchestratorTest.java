package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.OrderSagaFixture.OrderData;
import io.streamsaga.inmemory.saga.OrderSagaFixture.Services;
import io.streamsaga.inmemory.saga.TripSagaFixture.Trip;
import io.streamsaga.inmemory.saga.TripSagaFixture.TripData;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.InjectedFailure;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SagaOrchestratorTest {
    private static final OrderData ORDER = OrderData.of("alice", 120, "book", "pen");
    private static final TripData TRIP = new TripData("bob", null, null, null, false);

    private static SagaTestKit<Services, OrderData> orderSaga() {
        return SagaTestKit.given(env -> new Services(), OrderSagaFixture::definition, ORDER);
    }

    private static SagaTestKit<Trip, TripData> tripSaga() {
        return SagaTestKit.given(TripSagaFixture::trip, TripSagaFixture::definition, TRIP).types(TripSagaFixture.types());
    }

    private static SagaTestKit<Trip, TripData> tripSagaWithFlightServiceDown() {
        return SagaTestKit.given(env -> {
            Trip trip = TripSagaFixture.trip(env);
            trip.flightParticipantDown = true;
            return trip;
        }, TripSagaFixture::definition, TRIP).types(TripSagaFixture.types());
    }

    private static long count(SagaRunReport<?, ?> run, TransitionType type) {
        return run.history().stream().filter(t -> t.type() == type).count();
    }

    @Test
    void happyPathRunsEveryStepInOrderAndCompletes() {
        SagaRunReport<Services, OrderData> run = orderSaga().whenRun()
                .expectCompleted()
                .expectSteps("create-order", "reserve-inventory", "process-payment", "schedule-shipping")
                .expectCompensations();

        SagaResult<OrderData> result = run.result();
        assertTrue(result.isCompleted());
        assertEquals("order-test-saga-1/create-order", result.data().orderId());
        assertEquals("reservation-test-saga-1/reserve-inventory", result.data().reservationId());
        assertEquals("payment-test-saga-1/process-payment", result.data().paymentId());
        assertNull(result.failure());
        assertEquals(1, run.fixture().shipments);
    }

    @Test
    void failingPaymentCompensatesCompletedStepsInReverseOrderAndKeepsTheOriginalError() {
        SagaRunReport<Services, OrderData> run = orderSaga()
                .failStep("process-payment", FailureMode.always())
                .whenRun()
                .expectCompensated()
                .expectSteps("create-order", "reserve-inventory")
                .expectCompensations("reserve-inventory", "create-order")
                .expectFailureAt("process-payment");

        SagaResult<OrderData> result = run.result();
        assertTrue(result.isCompensated());
        assertEquals(InjectedFailure.class.getName(), result.failure().errorClass());
        assertInstanceOf(InjectedFailure.class, result.exception());
        assertEquals(1, run.fixture().releases);
        assertEquals(1, run.fixture().ordersCancelled);
        assertEquals(0, run.fixture().shipments);
        SagaInstance instance = run.instance().orElseThrow();
        assertEquals(StepStatus.FAILED, instance.step("process-payment").orElseThrow().status());
        assertEquals(StepStatus.COMPENSATED, instance.step("create-order").orElseThrow().status());
    }

    @Test
    void failedStepIsRetriedWithExponentialBackoffOnTheVirtualClock() {
        SagaDefinition<OrderData> definition = SagaDefinition.builder("retry-saga", OrderData.class)
                .step("flaky").action((d, ctx) -> d)
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(10)).multiplier(2).jitter(0).build())
                .build();
        SagaRunReport<Void, OrderData> run = SagaTestKit.given(definition, ORDER)
                .failStep("flaky", FailureMode.times(2))
                .whenRun()
                .expectCompleted()
                .expectAttempts("flaky", 3);

        assertEquals(2, count(run, TransitionType.STEP_RETRY_SCHEDULED));
        Instant started = run.history().get(0).at();
        assertEquals(Duration.ofSeconds(30), Duration.between(started, run.environment().scheduler().now()));
    }

    @Test
    void nonRetryableErrorsAreNotRetried() {
        SagaDefinition<OrderData> definition = SagaDefinition.builder("strict-saga", OrderData.class)
                .step("validate").action((d, ctx) -> {
                    throw new IllegalArgumentException("bad order");
                })
                .retry(RetryPolicy.builder().maxAttempts(5).noBackoff().nonRetryable(IllegalArgumentException.class).build())
                .build();
        SagaTestKit.given(definition, ORDER).whenRun()
                .expectCompensated()
                .expectAttempts("validate", 1)
                .expectFailureAt("validate");
    }

    @Test
    void failedCompensationIsRetriedThenTheSagaNeedsAttentionUntilAnOperatorRetriesIt() {
        SagaRunReport<Services, OrderData> run = orderSaga()
                .failStep("schedule-shipping", FailureMode.always())
                .failCompensation("process-payment", FailureMode.times(3))
                .whenRun()
                .expectNeedsAttention()
                .expectCompensations();

        SagaResult<OrderData> result = run.result();
        assertTrue(result.needsAttention());
        assertEquals("schedule-shipping", result.failure().step());
        assertEquals("process-payment", result.compensationFailure().step());
        assertEquals(3, run.instance().orElseThrow().step("process-payment").orElseThrow().compensationAttempts());
        assertEquals(1, run.orchestrator().findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).size());

        run.retryCompensation()
                .expectCompensated()
                .expectCompensations("process-payment", "reserve-inventory", "create-order");
        assertEquals(1, run.fixture().refunds);
        assertEquals(1, count(run, TransitionType.SAGA_RETRIED));
    }

    @Test
    void skippingAFailedCompensationGoesOnWithTheEarlierSteps() {
        SagaRunReport<Services, OrderData> run = orderSaga()
                .failStep("schedule-shipping", FailureMode.always())
                .failCompensation("process-payment", FailureMode.always())
                .whenRun()
                .expectNeedsAttention()
                .skipCompensation("process-payment")
                .expectCompensated()
                .expectCompensations("reserve-inventory", "create-order");

        assertEquals(StepStatus.COMPENSATION_SKIPPED, run.instance().orElseThrow().step("process-payment").orElseThrow().status());
        assertEquals(0, run.fixture().refunds);
    }

    @Test
    void markResolvedEndsASagaThatNeedsAttention() {
        SagaRunReport<Services, OrderData> run = orderSaga()
                .failStep("schedule-shipping", FailureMode.always())
                .failCompensation("create-order", FailureMode.always())
                .whenRun()
                .expectNeedsAttention()
                .expectCompensations("process-payment", "reserve-inventory")
                .markResolved()
                .expectStatus(SagaStatus.RESOLVED);
        assertTrue(run.orchestrator().findByStatus(SagaStatus.FAILED_NEEDS_ATTENTION).isEmpty());
    }

    @Test
    void retriableStepAfterThePivotIsRetriedUntilItSucceedsAndNothingIsCompensated() {
        SagaRunReport<Trip, TripData> run = tripSaga()
                .failStep("send-confirmation", FailureMode.times(3))
                .whenRun()
                .expectCompleted()
                .expectAttempts("send-confirmation", 4)
                .expectCompensations();
        assertEquals(1, run.fixture().confirmations);
    }

    @Test
    void remoteStepSendsACorrelatedCommandAndCompletesOnTheReply() {
        SagaRunReport<Trip, TripData> run = tripSaga().whenRun()
                .expectCompleted()
                .expectSteps("validate-trip", "book-hotel", "book-flight", "charge-card", "send-confirmation");

        List<Message> commands = run.environment().transport().messages("flight-commands");
        assertEquals(1, commands.size());
        Message command = commands.get(0);
        assertEquals("test-saga-1", command.header(MessageHeaders.SAGA_ID).orElseThrow());
        assertEquals("book-flight", command.header(SagaMessages.STEP).orElseThrow());
        assertEquals("test-saga-1/book-flight", command.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow());
        assertEquals("saga-replies", command.header(SagaMessages.REPLY_TOPIC).orElseThrow());
        assertTrue(command.id().matches("test-saga-1/[0-9T:.-]+Z/book-flight/1"), command.id()); // <saga id>/<start>/..
        TripData data = run.result().data();
        assertEquals("flight-test-saga-1/book-flight", data.flightId());
        assertEquals("hotel-test-saga-1/book-hotel", data.hotelId());
    }

    @Test
    void remoteStepWithoutAReplyTimesOutFromItsPersistedDeadlineAndTheGroupIsCompensated() {
        SagaRunReport<Trip, TripData> run = tripSagaWithFlightServiceDown().whenStarted();

        SagaInstance waiting = run.instance().orElseThrow();
        assertEquals(SagaStatus.RUNNING, waiting.status());
        assertEquals(StepStatus.WAITING, waiting.step("book-flight").orElseThrow().status());
        assertEquals(run.environment().scheduler().now().plus(Duration.ofMinutes(5)),
                waiting.step("book-flight").orElseThrow().dueAt());

        run.advance(Duration.ofMinutes(4)).expectStatus(SagaStatus.RUNNING);
        run.advance(Duration.ofMinutes(1))
                .expectCompensated()
                .expectFailureAt("book-flight")
                .expectCompensations("book-hotel", "book-flight");
        assertEquals(1, count(run, TransitionType.STEP_TIMED_OUT));
        assertInstanceOf(SagaException.class, run.result().exception());
        assertEquals(1, run.fixture().hotelCancellations);
        assertTrue(run.fixture().applied.contains("flight-cancel:test-saga-1/book-flight"), "flight tombstone");
    }

    @Test
    void cancellingARunningSagaCompensatesWhatWasDone() {
        SagaRunReport<Trip, TripData> run = tripSagaWithFlightServiceDown().whenStarted().cancel()
                .expectCompensated()
                .expectCompensations("book-hotel", "book-flight");

        assertTrue(run.result().failure().message().contains("cancelled"), run.result().failure().toString());
        assertEquals(0, run.environment().scheduler().pendingTasks());
        assertEquals(0, run.fixture().charges);
    }

    @Test
    void aParallelMemberFailureCompensatesTheMembersThatCompleted() {
        tripSaga().failStep("book-flight", FailureMode.always()).whenRun()
                .expectCompensated()
                .expectSteps("validate-trip", "book-hotel")
                .expectCompensations("book-hotel", "book-flight");
    }

    @Test
    void asynchronousActionThatNeverCompletesTimesOutAndEarlierStepsAreCompensated() {
        SagaDefinition<OrderData> definition = SagaDefinition.builder("async-saga", OrderData.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("slow").asyncAction((d, ctx) -> new CompletableFuture<>()).timeout(Duration.ofSeconds(30))
                .build();
        SagaRunReport<Void, OrderData> run = SagaTestKit.given(definition, ORDER).whenRun()
                .expectCompensated()
                .expectCompensations("reserve");
        assertEquals(1, count(run, TransitionType.STEP_TIMED_OUT));
    }

    @Test
    void asynchronousActionResultUpdatesTheData() {
        SagaDefinition<OrderData> definition = SagaDefinition.builder("async-saga", OrderData.class)
                .step("create").asyncAction((d, ctx) -> CompletableFuture.completedFuture(d.withOrderId("async-1")))
                .build();
        SagaRunReport<Void, OrderData> run = SagaTestKit.given(definition, ORDER).whenRun().expectCompleted();
        assertEquals("async-1", run.result().data().orderId());
    }

    @Test
    void recordedRunExportsASequenceDiagram() {
        String diagram = orderSaga().failStep("process-payment", FailureMode.always()).whenRun().sequenceDiagram();
        int failed = diagram.indexOf("process_payment--xO: failed");
        int reserveUndone = diagram.indexOf("O->>reserve_inventory: compensate");
        int orderUndone = diagram.indexOf("O->>create_order: compensate");
        assertTrue(failed > 0 && failed < reserveUndone && reserveUndone < orderUndone, diagram);
        assertNotNull(diagram);
    }

    @Test
    void historyRecordsEveryTransitionBeforeTheEngineActs() {
        List<SagaTransition> history = orderSaga().whenRun().history();
        assertEquals(List.of(TransitionType.SAGA_STARTED,
                TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                TransitionType.SAGA_COMPLETED), history.stream().map(SagaTransition::type).toList());
        // One store write per act: step n's success goes with step n+1's start, the last with the completion.
        assertEquals(List.of(1L, 1L, 2L, 2L, 3L, 3L, 4L, 4L, 5L, 5L), history.stream().map(SagaTransition::version).toList());
    }
}
