package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.StepContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SagaMessages#stepIdempotencyKey}: a participant keeps a step's effect under the key of its command and finds
 * it again from the compensation's command, whose {@code saga-idempotency-key} has {@code /compensation} appended,
 * without cutting the key by hand.
 */
class SagaStepIdempotencyKeyTest {
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final SeatDeskFixture desk = new SeatDeskFixture(scheduler);
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> stepContextKeys = new CopyOnWriteArrayList<>();
    private final SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
            .step("reserve-seat").command("seat-commands", (b, ctx) -> {
                stepContextKeys.add(ctx.idempotencyKey());
                return new ReserveSeat(b.passenger());
            })
            .onReply(SeatReserved.class, (b, reply) -> b)
            .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
            .onCompensationReply(SeatReleased.class, (b, reply) -> {
            })
            .timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE)
            .step("charge").action((b, ctx) -> {
                throw new IllegalStateException("card declined");
            }).retry(RetryPolicy.NONE)
            .build();

    @AfterEach
    void close() {
        desk.close();
    }

    @Test
    void theStepsCommandAndItsCompensationsCommandGiveTheSameStepKeyAsTheStepContext() {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(desk.bus).scheduler(scheduler)
                .register(definition).build()) {
            CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null,
                    new Booking("carol")).toCompletableFuture();
            desk.transport.drainAll();
            Message reserve = desk.reserveCommands.get(0);
            desk.answer(reserve, new SeatReserved(true));
            Message release = desk.releaseCommands.get(0);
            desk.answer(release, new SeatReleased(true));
            assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());

            assertEquals(List.of("saga-1/reserve-seat"), stepContextKeys);
            assertEquals("saga-1/reserve-seat", SagaMessages.stepIdempotencyKey(reserve));
            assertEquals("saga-1/reserve-seat", SagaMessages.stepIdempotencyKey(release));
            assertNotEquals(release.header(SagaMessages.IDEMPOTENCY_KEY), reserve.header(SagaMessages.IDEMPOTENCY_KEY),
                    "the participant still dedupes each command by its own key");
            assertEquals(new StepContext("saga-1", "seat-saga", "reserve-seat", 1, null).idempotencyKey(),
                    SagaMessages.stepIdempotencyKey(release));
        }
    }

    @Test
    void aMessageThatIsNoSagaCommandIsRefusedNamingIt() {
        Message plain = Message.builder("seat-commands").id("m-1").type("reserve-seat").payload("x").build();

        SagaException e = assertThrows(SagaException.class, () -> SagaMessages.stepIdempotencyKey(plain));

        assertTrue(e.getMessage().contains("'m-1'") && e.getMessage().contains(SagaMessages.IDEMPOTENCY_KEY),
                e.getMessage());
    }
}
