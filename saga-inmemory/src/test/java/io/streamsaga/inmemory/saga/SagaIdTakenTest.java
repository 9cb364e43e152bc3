package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A saga id names one saga: a start under an id the store holds, or that a run here drives, is refused with a
 * {@link ConcurrentSagaUpdateException} (the type every store throws for an insert that loses) whose message says
 * that the id is taken and what to do, not that a saga "was updated concurrently", which a caller starting a saga
 * once cannot act on.
 */
class SagaIdTakenTest {
    record Trip(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();

    @Test
    void aStartUnderTheIdOfAFinishedSagaIsRefusedSayingTheIdIsTaken() {
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("book").action((trip, ctx) -> trip)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).build()) {
            assertEquals(SagaOutcome.COMPLETED,
                    orchestrator.start(definition, "trip-1", null, new Trip("1")).toCompletableFuture().join().outcome());

            CompletableFuture<?> again = orchestrator.start(definition, "trip-1", null, new Trip("2")).toCompletableFuture();

            Throwable refused = assertThrows(CompletionException.class, again::join).getCause();
            assertInstanceOf(ConcurrentSagaUpdateException.class, refused);
            assertEquals("saga 'trip-1' exists already: a saga id names one saga, so start the new one under an id of"
                    + " its own (or let start(definition, businessKey, data) generate one)", refused.getMessage());
        }
    }

    @Test
    void aStartUnderTheIdOfASagaRunningHereIsRefusedSayingTheIdIsTaken() {
        CompletableFuture<Trip> booking = new CompletableFuture<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("book").asyncAction((trip, ctx) -> booking)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).build()) {
            CompletableFuture<?> first = orchestrator.start(definition, "trip-1", null, new Trip("1")).toCompletableFuture();

            CompletableFuture<?> again = orchestrator.start(definition, "trip-1", null, new Trip("2")).toCompletableFuture();

            Throwable refused = assertThrows(CompletionException.class, again::join).getCause();
            assertInstanceOf(ConcurrentSagaUpdateException.class, refused);
            assertEquals("saga 'trip-1' exists already: a saga id names one saga, so start the new one under an id of"
                    + " its own (or let start(definition, businessKey, data) generate one)", refused.getMessage());
            booking.complete(new Trip("1"));
            assertEquals(SagaOutcome.COMPLETED, ((io.streamsaga.saga.SagaResult<?>) first.join()).outcome());
        }
    }
}
