package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A listener that calls {@code retryCompensation} from every {@code onFailed} (an application's automatic retry, bounded
 * by its own count) against a failure that always repeats: each retry is driven by the run's drive loop, which a call
 * made while the run is driven only asks for one more pass, not by a drive nested in the call, so the stack does not grow
 * with the number of retries (it would, one drive per retry, until a StackOverflowError stopped the run as if the
 * process died), and the saga ends needing attention once the listener stops retrying.
 */
class RetryFromAListenerOnEveryFailureTest {
    private static final int RETRIES = 300;

    record Data(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
    /** The depth of the stack at each onFailed, in order. */
    private final List<Integer> depths = new CopyOnWriteArrayList<>();

    @AfterEach
    void tearDown() {
        if (self.get() != null) {
            self.get().close();
        }
        scheduler.close();
    }

    /** An orchestrator whose listener retries the saga from onFailed, {@link #RETRIES} times in all. */
    private SagaOrchestrator retryingOrchestrator(SagaStore store, SagaDefinition<Data> definition) {
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        depths.add(Thread.currentThread().getStackTrace().length);
                        if (depths.size() <= RETRIES) {
                            self.get().retryCompensation(instance.sagaId());
                        }
                    }
                })
                .build();
        self.set(orchestrator);
        return orchestrator;
    }

    private void assertEveryRetryHeardAtTheSameDepth() {
        assertEquals(RETRIES + 1, depths.size(), "onFailed once per failure, the first and each retry's");
        // The first may be heard elsewhere (outside a drive pass); every retry's at the depth of the first retry's.
        assertTrue(depths.subList(1, depths.size()).stream().allMatch(depths.get(1)::equals),
                () -> "the stack grew with the retries: " + depths);
    }

    @Test
    void aCompensationThatKeepsFailingRetriedFromEveryOnFailedIsRetriedAtTheSameStackDepthUntilTheListenerStops() {
        AtomicInteger releases = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    releases.incrementAndGet();
                    throw new IllegalStateException("warehouse down");
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = retryingOrchestrator(new InMemorySagaStore(), definition);

        SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals(RETRIES + 1, releases.get(), "the compensation, once and once per retry");
        assertEveryRetryHeardAtTheSameDepth();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, orchestrator.find("saga-1").orElseThrow().status());
    }

    @Test
    void aStepWhoseOutcomeTheStoreAlwaysRefusesRetriedFromEveryOnFailedIsRetriedAtTheSameStackDepthUntilTheListenerStops() {
        // Refuses every write of reserve's success (a result it cannot keep), a refusal a retry meets again.
        SagaStore store = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.STEP_SUCCEEDED) {
                    throw new ConfigurationException("the store cannot keep this value");
                }
                delegate.update(updated, transition);
            }
        };
        AtomicInteger attempts = new AtomicInteger();
        CompletableFuture<Data> firstAttempt = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> attempts.incrementAndGet() == 1 ? firstAttempt
                        : CompletableFuture.completedFuture(new Data("too large to keep")))
                .compensation((d, ctx) -> {
                })
                .build();
        SagaOrchestrator orchestrator = retryingOrchestrator(store, definition);
        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                .toCompletableFuture();

        firstAttempt.complete(new Data("too large to keep")); // outside a drive pass, as an outcome comes

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.join().outcome());
        assertEquals(RETRIES + 1, attempts.get(), "the step, once and once per retry");
        assertEveryRetryHeardAtTheSameDepth();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
    }
}
