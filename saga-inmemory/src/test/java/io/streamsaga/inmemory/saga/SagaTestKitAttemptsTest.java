package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Airline;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Book;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Booked;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Trip;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.function.Function;

import static io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.TYPES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@code expectAttempts(step, n)} counts the attempts started, a remote step's as a local one's: each command the
 * orchestrator sent for it, answered or not. It counted only a remote step's reply handlings, so a step whose three
 * commands all timed out unanswered passed {@code expectAttempts(step, 0)}, read as "never attempted".
 */
class SagaTestKitAttemptsTest {
    /** Books a trip with an airline answering the attempts {@code answers} accepts at once; three attempts, 10 s each. */
    private static SagaTestKit<Airline, Trip> booking(Function<String, Boolean> answers) {
        return SagaTestKit.given(env -> new Airline(env, Duration.ZERO, answers),
                        airline -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(10),
                                RetryPolicy.builder().maxAttempts(3).noBackoff().build()), new Trip("t-1"))
                .types(TYPES);
    }

    @Test
    void aRemoteStepWhoseCommandsAllTimedOutUnansweredCountsEachCommandSentAsAnAttempt() {
        var run = booking(attempt -> false).whenRun().expectCompensated();

        assertEquals(List.of("1", "2", "3"), run.fixture().attempts);
        run.expectAttempts("book", 3);
        AssertionError never = assertThrows(AssertionError.class, () -> run.expectAttempts("book", 0));
        assertEquals("expected 0 attempts of step book but saw 3", never.getMessage());
    }

    @Test
    void aRemoteStepCountsOneAttemptPerCommandWhetherItsReplyWasMissingRejectedOrTaken() {
        // Attempt 1 unanswered (timed out), attempt 2's reply rejected (injected), attempt 3's reply taken.
        booking(attempt -> !attempt.equals("1")).failStep("book", FailureMode.once()).whenRun()
                .expectCompleted()
                .expectAttempts("book", 3);
    }

    @Test
    void aRemoteStepWhoseCommandCouldNotBeBuiltCountsEachAttemptStartedThoughNoCommandWasSent() {
        // The step's own code (its command factory) fails each of the three attempts, as a local action may throw:
        // the engine starts each attempt (STEP_WAITING), no command leaves, and the retries run out.
        var run = SagaTestKit.given(env -> new Airline(env, Duration.ZERO, attempt -> true),
                        airline -> SagaDefinition.builder("trip", Trip.class)
                                .step("book").command("book-commands", (trip, ctx) -> {
                                    throw new IllegalStateException("no fare for " + trip.id());
                                })
                                .onReply(Booked.class, (trip, reply) -> trip)
                                .timeout(Duration.ofSeconds(10))
                                .retry(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                                .build(), new Trip("t-3"))
                .types(TYPES)
                .whenRun()
                .expectCompensated();

        assertEquals(List.of(), run.fixture().attempts);
        run.expectAttempts("book", 3);
        AssertionError never = assertThrows(AssertionError.class, () -> run.expectAttempts("book", 0));
        assertEquals("expected 0 attempts of step book but saw 3", never.getMessage());
    }

    /**
     * An airline that runs a saga of its own on the kit's bus for each booking (its seat hold, whose remote step is
     * also named "book", answered by a reservation system), and answers the run's command at once.
     */
    static final class AirlineHoldingSeats implements AutoCloseable {
        final SagaOrchestrator own;

        AirlineHoldingSeats(SagaTestEnvironment env) {
            SagaDefinition<Trip> seatHold = SagaDefinition.builder("seat-hold", Trip.class)
                    .step("book").command("gds-commands", (trip, ctx) -> new Book(trip.id()))
                    .onReply(Booked.class, (trip, reply) -> trip)
                    .build();
            own = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(env.bus()).scheduler(env.scheduler())
                    .parallelExecutor(Runnable::run).replyTopic("airline-replies").group("airline-sagas")
                    .register(seatHold).build();
            env.bus().subscribe("gds", "gds-commands", Book.class,
                    (command, ctx) -> SagaMessages.reply(env.bus(), ctx.message(), new Booked(command.id())));
            env.bus().subscribe("airline", "book-commands", Book.class, (command, ctx) -> {
                own.start(seatHold, "hold-" + command.id(), command.id(), new Trip(command.id()));
                SagaMessages.reply(env.bus(), ctx.message(), new Booked(command.id()));
            });
        }

        @Override
        public void close() {
            own.close();
        }
    }

    @Test
    void theCommandsOfAnotherSagaOnTheKitsBusAreNotCountedAsTheRunsAttempts() {
        var run = SagaTestKit.given(AirlineHoldingSeats::new,
                        airline -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(10), RetryPolicy.NONE), new Trip("t-5"))
                .types(TYPES)
                .whenRun()
                .expectCompleted();
        try (AirlineHoldingSeats airline = run.fixture()) {
            assertEquals(SagaStatus.COMPLETED, airline.own.find("hold-t-5").orElseThrow().status());

            run.expectAttempts("book", 1); // the seat hold's command of its step "book" is the airline's saga's
        }
    }
}
