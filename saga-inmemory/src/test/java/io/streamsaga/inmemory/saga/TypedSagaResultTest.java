package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@code result(sagaId)} gives a {@code SagaResult<Object>}, which an application had to cast; {@code result(sagaId,
 * dataClass)} gives it with the data as the definition's data class, for a saga driven here and for one finished and
 * read from the store, and completes exceptionally with a {@link ConfigurationException} naming the saga, its data's
 * class, the definition version and the class asked when the data is of another class, never a
 * {@code ClassCastException} at the application's first read of the data.
 */
class TypedSagaResultTest {
    record Trip(String id) {
    }

    record Order(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final CompletableFuture<Trip> booking = new CompletableFuture<>();
    private final SagaDefinition<Trip> trips = SagaDefinition.builder("trip", Trip.class)
            .step("book").asyncAction((trip, ctx) -> booking)
            .build();

    private SagaOrchestrator orchestrator() {
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(trips).build();
    }

    @Test
    void aSagasResultIsGivenAsItsDefinitionsDataClassWhileDrivenHereAndOnceFinishedFromTheStore() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            orchestrator.start(trips, "trip-1", null, new Trip("1"));
            CompletionStage<SagaResult<Trip>> pending = orchestrator.result("trip-1", Trip.class);
            assertFalse(pending.toCompletableFuture().isDone());

            booking.complete(new Trip("1-booked"));

            SagaResult<Trip> result = pending.toCompletableFuture().join();
            assertEquals(SagaOutcome.COMPLETED, result.outcome());
            assertEquals("1-booked", result.data().id());
        }
        try (SagaOrchestrator restarted = orchestrator()) {
            Trip stored = restarted.result("trip-1", Trip.class).toCompletableFuture().join().data();

            assertEquals(new Trip("1-booked"), stored);
        }
    }

    @Test
    void aResultAskedAsAnotherClassCompletesExceptionallyNamingTheSagaItsDataClassAndTheClassAsked() {
        booking.complete(new Trip("1-booked"));
        try (SagaOrchestrator orchestrator = orchestrator()) {
            orchestrator.start(trips, "trip-1", null, new Trip("1"));

            CompletableFuture<SagaResult<Order>> asOrder = orchestrator.result("trip-1", Order.class).toCompletableFuture();

            Throwable refused = assertThrows(CompletionException.class, asOrder::join).getCause();
            assertInstanceOf(ConfigurationException.class, refused);
            assertEquals("saga 'trip-1': its data is a " + Trip.class.getName() + " (definition version 1), not a "
                    + Order.class.getName(), refused.getMessage());
        }
    }

    @Test
    void aNullDataClassIsRefused() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> orchestrator.result("trip-1", null));

            assertEquals("dataClass must not be null", e.getMessage());
        }
    }
}
