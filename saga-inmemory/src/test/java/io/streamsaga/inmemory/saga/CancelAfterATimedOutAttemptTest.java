package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A remote step that timed out may have taken effect at the participant, so it is uncertain and compensated
 * (docs/sagas.md, Remote steps) — also when the saga is cancelled while the step waits for its next attempt.
 */
class CancelAfterATimedOutAttemptTest {
    record Booking(String passenger) {
    }

    record ReserveSeat(String passenger) {
    }

    record SeatReserved(String seatId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                    .register("seat-reserved", 1, SeatReserved.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> released = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aRemoteStepWhoseAttemptTimedOutIsCompensatedWhenTheSagaIsCancelledBeforeItsRetry() {
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b)
                .compensation((b, ctx) -> released.add(ctx.idempotencyKey())) // tolerates "nothing to undo"
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofMinutes(1))
                        .maxBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .timeout(Duration.ofSeconds(10))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Booking("bob"));
        transport.drainAll(); // the command reaches the seat service, which reserves but is slow to answer
        scheduler.advance(Duration.ofSeconds(10)); // the attempt times out; the next one is a minute away
        assertEquals(StepStatus.RETRY_SCHEDULED, store.find("saga-1").orElseThrow().step("reserve-seat").orElseThrow().status());

        orchestrator.cancel("saga-1");
        transport.drainAll();

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("saga-1/reserve-seat"), released, "the timed-out attempt may have reserved a seat");
        orchestrator.close();
    }
}
