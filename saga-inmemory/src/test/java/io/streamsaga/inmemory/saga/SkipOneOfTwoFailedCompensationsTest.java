package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SagaInstance/SagaResult.compensationFailure(): "the compensation failure that needs attention". Once an
 * operator skipped one of two failed compensations, it names the one still failed, not the skipped one.
 */
class SkipOneOfTwoFailedCompensationsTest {
    record Data(String id) {
    }

    private void skipOneOfTwo(InMemorySagaStore store, boolean withHistory) {
        SagaDefinition<Data> definition = SagaDefinition.builder("trip-saga", Data.class)
                .parallel(group -> {
                    group.step("hotel").action((d, ctx) -> d).compensation((d, ctx) -> {
                        throw new IllegalStateException("the hotel refuses to cancel");
                    }).compensationRetry(RetryPolicy.NONE);
                    group.step("flight").action((d, ctx) -> d).compensation((d, ctx) -> {
                        throw new IllegalArgumentException("the airline refuses to cancel");
                    }).compensationRetry(RetryPolicy.NONE);
                })
                .step("pay").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .parallelExecutor(Runnable::run).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        SagaInstance stuck = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, stuck.status());
        String skipped = stuck.compensationFailure().step();
        String other = skipped.equals("hotel") ? "flight" : "hotel";

        SagaResult<Object> result = orchestrator.skipCompensation("saga-1", skipped).toCompletableFuture().getNow(null);

        assertTrue(result != null && result.needsAttention(), String.valueOf(result));
        assertEquals(StepStatus.COMPENSATION_SKIPPED, store.find("saga-1").orElseThrow().step(skipped).orElseThrow().status());
        assertEquals(other, result.compensationFailure().step(), "names the skipped compensation");
        assertEquals(other, store.find("saga-1").orElseThrow().compensationFailure().step());
        String message = other.equals("hotel") ? "the hotel refuses to cancel" : "the airline refuses to cancel";
        if (withHistory) { // else the instance alone cannot say why the other failed, only that it did
            assertEquals(message, result.compensationFailure().message());
        }
        orchestrator.close();
    }

    @Test
    void afterSkippingOneOfTwoFailedCompensationsTheOtherIsNamed() {
        skipOneOfTwo(new InMemorySagaStore(), true);
    }

    @Test
    void aStoreWithoutHistoryStillNamesTheOtherStep() {
        skipOneOfTwo(new InMemorySagaStore(false, true), false);
    }
}
