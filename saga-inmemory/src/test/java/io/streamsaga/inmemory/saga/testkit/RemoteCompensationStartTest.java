package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.RecordingInterceptor.CompensationEvent;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The crash explorer's reverse-order invariant judges when compensations start. A remote compensation starts when
 * its command is sent: its interceptor invocation is only the handling of its reply, after the participant undid,
 * so the start the kit recorded from it came too late (or never, without a reply) to catch a command sent while a
 * later group was still being undone.
 */
class RemoteCompensationStartTest {
    record Trip(String id) {
    }

    record Book(String id) {
    }

    record Booked(String id) {
    }

    record CancelBooking(String id) {
    }

    record BookingCancelled(String id) {
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("book", 1, Book.class).register("booked", 1, Booked.class)
                .register("cancel-booking", 1, CancelBooking.class).register("booking-cancelled", 1, BookingCancelled.class)
                .build();
    }

    /** An airline that books at once and never answers a cancellation. */
    private static Void airline(SagaTestEnvironment env) {
        env.bus().subscribe("airline", "book-commands", Book.class,
                (command, ctx) -> SagaMessages.reply(env.bus(), ctx.message(), new Booked(command.id())));
        env.bus().subscribe("airline", "cancel-commands", CancelBooking.class, (command, ctx) -> { });
        return null;
    }

    private static SagaDefinition<Trip> definition(Void airline) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("book-flight").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                .onReply(Booked.class, (trip, reply) -> trip)
                .compensationCommand("cancel-commands", (trip, ctx) -> new CancelBooking(trip.id()))
                .onCompensationReply(BookingCancelled.class, (trip, reply) -> { })
                .compensationTimeout(Duration.ofMinutes(1)).compensationRetry(RetryPolicy.NONE)
                .step("pay").action((trip, ctx) -> trip)
                .build();
    }

    @Test
    void aRemoteCompensationStartsWhenItsCommandIsSentEvenIfNoReplyEverComes() {
        SagaRunReport<Void, Trip> report = SagaTestKit.given(RemoteCompensationStartTest::airline,
                        RemoteCompensationStartTest::definition, new Trip("t-1"))
                .types(types())
                .failStep("pay", FailureMode.always())
                .whenRun()
                .expectNeedsAttention(); // the cancellation's reply never came

        assertEquals(List.of(new CompensationEvent("book-flight", true)), report.compensationEvents());
    }
}
