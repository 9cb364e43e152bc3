package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SagaListener.onFailed and SagaResult: a saga that needs attention because a retriable step exhausted its
 * retries compensated nothing, so it has no compensation failure: {@code failure()} names the stuck step.
 */
class StuckRetriableStepFailureTest {
    record Data(String id) {
    }

    @Test
    void aStuckRetriableStepIsNamedByFailureNotByCompensationFailure() {
        List<SagaInstance> failed = new CopyOnWriteArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("stuck-saga", Data.class)
                .pivot("charge").action((d, ctx) -> d)
                .retriable("ship").action((d, ctx) -> {
                    throw new IllegalStateException("carrier down");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(new VirtualScheduler()).register(definition)
                .listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        failed.add(instance);
                    }
                }).build();

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertTrue(result.needsAttention());
        assertEquals("ship", result.failure().step());
        assertNull(result.compensationFailure());
        assertEquals(1, failed.size());
        assertEquals("ship", failed.get(0).failure().step());
        assertNull(failed.get(0).compensationFailure());
        orchestrator.close();
    }
}
