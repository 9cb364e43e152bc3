package io.streamsaga.inmemory.saga;

import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A cancel whose own write the store refuses throws that refusal, as SagaOrchestrator.cancel
 * promises, also when the run driven here, put back as before the call, goes on and then stops on a later write of its
 * own (lost to another orchestrator): that stop is the run's, its result's to report, not the call's.
 */
class CancelRefusedByTheStoreTest {
    record Data(String id) {
    }

    /** Refuses the cancel's write (SAGA_COMPENSATING), then loses every later write to another orchestrator. */
    static final class RefusingThenLosingStore extends ForwardingSagaStore {
        final SagaWriteRefusedException refusal = new SagaWriteRefusedException("outbox row already there", null);
        volatile boolean refused;

        RefusingThenLosingStore() {
            super(new InMemorySagaStore());
        }

        @Override
        public void update(SagaInstance updated, SagaTransition transition) {
            if (refused) {
                throw new ConcurrentSagaUpdateException(updated.sagaId(), updated.version() - 1, updated.version());
            }
            if (transition.type() == TransitionType.SAGA_COMPENSATING) {
                refused = true;
                throw refusal;
            }
            super.update(updated, transition);
        }
    }

    private final ReplyAfterTheDeadlineTest.LateScheduler scheduler = new ReplyAfterTheDeadlineTest.LateScheduler();

    @AfterEach
    void close() {
        scheduler.close();
    }

    @Test
    void aCancelTheStoreRefusesThrowsItsRefusalNotTheStopOfTheRunThatGoesOnAfterIt() {
        RefusingThenLosingStore store = new RefusingThenLosingStore();
        AtomicInteger charges = new AtomicInteger();
        SagaDefinition<Data> definition = SagaDefinition.builder("order-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                })
                .step("charge").action((d, ctx) -> {
                    if (charges.incrementAndGet() == 1) {
                        throw new IllegalStateException("gateway busy");
                    }
                    return d;
                }).compensation((d, ctx) -> {
                })
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .register(definition).build()) {
            CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"))
                    .toCompletableFuture();
            // charge's retry is due, its timer late: the run drives it at its next pass, which the cancel's makes.
            scheduler.delegate.advance(Duration.ofMinutes(1));
            assertEquals(1, charges.get());

            SagaWriteRefusedException thrown = assertThrows(SagaWriteRefusedException.class,
                    () -> orchestrator.cancel("saga-1"));

            assertSame(store.refusal, thrown);
            // The call did not happen: the saga is stored running as before it, and the run, gone on, stopped on its
            // own write lost (charge's retry's start, so the retry did not run here), which its result reports.
            SagaInstance stored = store.find("saga-1").orElseThrow();
            assertEquals(SagaStatus.RUNNING, stored.status());
            assertFalse(store.history("saga-1").stream().anyMatch(t -> t.type() == TransitionType.SAGA_COMPENSATING));
            CompletionException stopped = assertThrows(CompletionException.class, result::join);
            assertInstanceOf(ConcurrentSagaUpdateException.class, stopped.getCause());
            assertEquals(1, charges.get(), "charge retried here though its start was not stored");
        }
    }
}
