package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * docs/sagas.md, Parallel groups: "If one fails for good, no further member is started, the running ones
 * settle, and the completed members are compensated": a member waiting for its retry is not started again.
 */
class GroupMemberRetryAfterFailureTest {
    record Data(String id) {
    }

    @Test
    void aMemberWaitingForItsRetryIsNotStartedAgainOnceAnotherMemberFailedForGood() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        AtomicInteger hotelAttempts = new AtomicInteger();
        List<String> undone = new CopyOnWriteArrayList<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("group-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> undone.add("reserve"))
                .parallel(group -> {
                    group.step("hotel").action((d, ctx) -> {
                        if (hotelAttempts.incrementAndGet() == 1) {
                            throw new IllegalStateException("hotel busy"); // retried in an hour
                        }
                        return d;
                    }).compensation((d, ctx) -> undone.add("hotel"))
                            .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofHours(1))
                                    .maxBackoff(Duration.ofHours(1)).jitter(0).build());
                    group.step("flight").action((d, ctx) -> {
                        throw new IllegalStateException("no flights"); // fails for good
                    }).compensation((d, ctx) -> undone.add("flight"));
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition).build();

        orchestrator.start(definition, "saga-1", null, new Data("a"));
        scheduler.advance(Duration.ofHours(2));

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(1, hotelAttempts.get(), "the hotel was booked again after the flight failed for good");
        assertEquals(List.of("reserve"), undone);
        orchestrator.close();
    }
}
