package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.saga.OrderSagaFixture.OrderData;
import io.streamsaga.inmemory.saga.OrderSagaFixture.Services;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.RecordedInvocation;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.saga.SagaInterceptor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SagaTestKitTest {
    private static final OrderData ORDER = OrderData.of("erin", 7, "mug");

    private static SagaTestKit<Services, OrderData> kit() {
        return SagaTestKit.given(env -> new Services(), OrderSagaFixture::definition, ORDER);
    }

    @Test
    void aTypoInAnInjectedFailureIsReportedInsteadOfInjectingNothing() {
        assertThrows(ConfigurationException.class, () -> kit().failStep("process-paymnet", FailureMode.always()).whenRun());
        AssertionError e = assertThrows(AssertionError.class,
                () -> kit().failCompensation("schedule-shipping", FailureMode.once()).whenRun());
        assertTrue(e.getMessage().contains("has no compensation"), e.getMessage());
        assertThrows(ConfigurationException.class, () -> FailureMode.times(0));
    }

    @Test
    void aTypoInTheStepOfAnExpectedAttemptCountIsReportedInsteadOfPassingAsNeverAttempted() {
        SagaRunReport<Services, OrderData> run = kit().whenRun().expectCompleted();

        // "never attempted" of a step the saga does not have would pass whatever the saga did
        ConfigurationException typo = assertThrows(ConfigurationException.class,
                () -> run.expectAttempts("process-paymnet", 0));
        assertTrue(typo.getMessage().contains("process-paymnet"), typo.getMessage());
        run.expectAttempts("process-payment", 1);
    }

    @Test
    void aNullStepOrFailureModeIsRefusedWhereItIsGivenNamingIt() {
        // before, taken, and whenRun() failed with a NullPointerException without a message from deep in the kit
        assertEquals("mode", assertThrows(NullPointerException.class,
                () -> kit().failStep("process-payment", null)).getMessage());
        assertEquals("step", assertThrows(NullPointerException.class,
                () -> kit().failStep(null, FailureMode.once())).getMessage());
        assertEquals("mode", assertThrows(NullPointerException.class,
                () -> kit().failCompensation("create-order", null)).getMessage());
        assertEquals("step", assertThrows(NullPointerException.class,
                () -> kit().failCompensation(null, FailureMode.once())).getMessage());
    }

    @Test
    void unmetExpectationsThrowAssertionErrorsThatShowTheRun() {
        SagaRunReport<Services, OrderData> run = kit().whenRun();

        AssertionError status = assertThrows(AssertionError.class, run::expectCompensated);
        assertTrue(status.getMessage().contains("expected the saga to be COMPENSATED but it is COMPLETED"), status.getMessage());
        assertTrue(status.getMessage().contains("sequenceDiagram"), status.getMessage());
        AssertionError order = assertThrows(AssertionError.class, () -> run.expectSteps("reserve-inventory", "create-order"));
        assertTrue(order.getMessage().contains("but were [create-order, reserve-inventory, process-payment, schedule-shipping]"),
                order.getMessage());
        assertThrows(AssertionError.class, () -> run.expectAttempts("create-order", 2));
    }

    @Test
    void everyInvocationIsRecordedWithItsIdempotencyKeyAndOutcome() {
        List<RecordedInvocation> invocations = kit().failStep("process-payment", FailureMode.once())
                .whenRun()
                .expectCompensated()
                .invocations();

        assertEquals(List.of("create-order", "reserve-inventory", "process-payment", "reserve-inventory", "create-order"),
                invocations.stream().map(RecordedInvocation::step).toList());
        RecordedInvocation payment = invocations.get(2);
        assertEquals(SagaInterceptor.Kind.ACTION, payment.kind());
        assertEquals("test-saga-1/process-payment", payment.idempotencyKey());
        assertTrue(!payment.succeeded() && payment.error().contains("injected failure 1"), payment.toString());
        assertEquals(SagaInterceptor.Kind.COMPENSATION, invocations.get(3).kind());
    }
}
