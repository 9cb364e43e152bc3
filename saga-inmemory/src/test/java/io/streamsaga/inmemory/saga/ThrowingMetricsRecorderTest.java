package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/sagas.md, "Hooks, events, metrics": what a {@link MetricsRecorder} throws is logged and ignored, as what a
 * listener throws: a broken metrics registry never changes a saga's course nor fails the call that drove it (the
 * late-heartbeat counter of a recovery: {@code SagaOwnershipTest}).
 */
class ThrowingMetricsRecorderTest {
    record Order(String id) {
    }

    @Test
    void aRecorderThatThrowsAtTheStartAndTheFinishOfASagaChangesNothing() {
        List<String> recorded = new CopyOnWriteArrayList<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("ship-saga", Order.class)
                .step("ship").action((order, ctx) -> order).build();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .register(definition).metrics(new MetricsRecorder() {
                    @Override
                    public void sagaStarted(String sagaName) {
                        recorded.add("started");
                        throw new IllegalStateException("the metrics registry is broken");
                    }

                    @Override
                    public void sagaFinished(String sagaName, String outcome, Duration duration) {
                        recorded.add(outcome);
                        throw new IllegalStateException("the metrics registry is broken");
                    }
                }).build();

        SagaResult<Order> result = orchestrator.start(definition, "o-1", null, new Order("o-1")).toCompletableFuture().join();

        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(List.of("started", "completed"), recorded);
        assertEquals(SagaStatus.COMPLETED, store.find("o-1").orElseThrow().status());
        assertEquals(SagaOutcome.COMPLETED, orchestrator.result("o-1").toCompletableFuture().join().outcome());
        orchestrator.close();
    }

    @Test
    void aRecorderThatThrowsAnErrorIsIgnoredAsAListenerThatDoes() {
        SagaDefinition<Order> definition = SagaDefinition.builder("ship-saga", Order.class)
                .step("ship").action((order, ctx) -> order).build();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler())
                .register(definition).metrics(new MetricsRecorder() {
                    @Override
                    public void sagaStarted(String sagaName) {
                        throw new AssertionError("a bug in the recorder");
                    }

                    @Override
                    public void sagaFinished(String sagaName, String outcome, Duration duration) {
                        throw new AssertionError("a bug in the recorder");
                    }
                }).build();

        SagaResult<Order> result = orchestrator.start(definition, "o-1", null, new Order("o-1")).toCompletableFuture().join();

        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(SagaStatus.COMPLETED, store.find("o-1").orElseThrow().status());
        orchestrator.close();
    }
}
