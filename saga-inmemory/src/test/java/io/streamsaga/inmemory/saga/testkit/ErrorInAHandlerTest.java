package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An Error the application's code throws inside a message handler the kit delivers to (a fake participant's
 * failed assertion, the application's own {@link SimulatedCrash}, one from a reply handler) fails the kit's call,
 * the run closed, as docs/sagas.md promises for any Error; the bus would otherwise dead-letter it or the in-memory
 * transport log it and deliver it again, and the test would see only a saga left running.
 */
class ErrorInAHandlerTest {
    record Trip(String id) {
    }

    record Book(String id) {
    }

    record Booked(String id) {
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder().register("book", 1, Book.class).register("booked", 1, Booked.class).build();
    }

    /** An airline whose handler throws {@code error} instead of answering. */
    private static Supplier<Error> airline(SagaTestEnvironment env, Error error) {
        env.bus().subscribe("airline", "book-commands", Book.class, (command, ctx) -> {
            throw error;
        });
        return () -> error;
    }

    /** An airline that books at once. */
    private static Void answeringAirline(SagaTestEnvironment env) {
        env.bus().subscribe("airline", "book-commands", Book.class,
                (command, ctx) -> SagaMessages.reply(env.bus(), ctx.message(), new Booked(command.id())));
        return null;
    }

    private static <F> SagaDefinition<Trip> definition(F fixture, Error fromReplyHandler) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("book-flight").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                .onReply(Booked.class, (trip, reply) -> {
                    if (fromReplyHandler != null) {
                        throw fromReplyHandler;
                    }
                    return trip;
                })
                .timeout(Duration.ofMinutes(1))
                .build();
    }

    @Test
    void aFailedAssertionOfAFakeParticipantFailsWhenStarted() {
        AssertionError error = new AssertionError("the airline expected another flight");
        AssertionError thrown = assertThrows(AssertionError.class, () -> SagaTestKit.given(
                        env -> airline(env, error), f -> definition(f, null), new Trip("t-1"))
                .types(types())
                .whenStarted());
        assertSame(error, thrown);
    }

    @Test
    void aFailedAssertionOfAFakeParticipantFailsWhenRun() {
        AssertionError error = new AssertionError("the airline expected another flight");
        AssertionError thrown = assertThrows(AssertionError.class, () -> SagaTestKit.given(
                        env -> airline(env, error), f -> definition(f, null), new Trip("t-1"))
                .types(types())
                .whenRun());
        assertSame(error, thrown);
    }

    @Test
    void theApplicationsSimulatedCrashInAParticipantFailsTheCall() {
        SimulatedCrash crash = new SimulatedCrash("the airline's process died");
        SimulatedCrash thrown = assertThrows(SimulatedCrash.class, () -> SagaTestKit.given(
                        env -> airline(env, crash), f -> definition(f, null), new Trip("t-1"))
                .types(types())
                .whenRun());
        assertSame(crash, thrown);
    }

    @Test
    void anExceptionOfAParticipantStaysTheBussRetryAndDeadLetterPath() {
        SagaRunReport<Supplier<Error>, Trip> report = assertDoesNotThrow(() -> SagaTestKit.given(
                        env -> {
                            env.bus().subscribe("airline", "book-commands", Book.class, (command, ctx) -> {
                                throw new IllegalStateException("no seats");
                            });
                            return (Supplier<Error>) () -> null;
                        }, f -> definition(f, null), new Trip("t-1"))
                .types(types())
                .whenRun()); // dead-lettered: no reply comes, the step times out
        assertTrue(report.instance().isPresent());
    }

    @Test
    void anErrorFromTheOrchestratorsReplyHandlerFailsTheCall() {
        AssertionError error = new AssertionError("unexpected reply");
        AssertionError thrown = assertThrows(AssertionError.class, () -> SagaTestKit.given(
                        ErrorInAHandlerTest::answeringAirline, f -> definition(f, error), new Trip("t-1"))
                .types(types())
                .whenRun());
        assertSame(error, thrown);
    }
}
