package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reply the orchestrator's codec cannot decode (a participant upgraded first answers in a version the orchestrator's
 * registry does not know yet) is bad input, dead-lettered with its reason as every message a bus cannot decode, not
 * taken: the step, or its compensation, goes on waiting for its reply until its timeout, so that the reply, redriven
 * once an orchestrator that reads it runs, completes it. Taken as the step's failure, it would compensate an effect
 * the participant reported done (a booking cancelled because of a version skew) and the reply would be gone.
 */
class UndecodableReplyTest {
    record Trip(String id, String hotelRef) {
    }

    record BookHotel(String tripId) {
    }

    record HotelBooked(String hotelRef) {
    }

    /** The hotel's next release's reply: version 2 of {@code hotel-booked}. */
    record HotelBookedV2(String hotelRef, String room) {
    }

    record CancelHotel(String tripId) {
    }

    record HotelCancelled(String tripId) {
    }

    /** The hotel's next release's answer to a cancellation: version 2 of {@code hotel-cancelled}. */
    record HotelCancelledV2(String tripId, String fee) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    /** The hotel, of the release that answers in version 2. */
    private final EventBus hotel = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
            .register("book-hotel", 1, BookHotel.class).register("cancel-hotel", 1, CancelHotel.class)
            .register("hotel-booked", 2, HotelBookedV2.class).register("hotel-cancelled", 2, HotelCancelledV2.class)
            .build()).build();

    @AfterEach
    void close() {
        hotel.close();
        transport.close();
    }

    /** The agency's bus: of the release that reads only version 1 of the hotel's replies, or of the one that reads 2. */
    private EventBus agency(boolean readsVersion2) {
        TypeRegistry.Builder types = TypeRegistry.builder()
                .register("book-hotel", 1, BookHotel.class).register("cancel-hotel", 1, CancelHotel.class);
        if (readsVersion2) {
            types.register("hotel-booked", 2, HotelBooked.class).upcaster("hotel-booked", 1, v1 -> v1)
                    .register("hotel-cancelled", 2, HotelCancelled.class).upcaster("hotel-cancelled", 1, v1 -> v1);
        } else {
            types.register("hotel-booked", 1, HotelBooked.class).register("hotel-cancelled", 1, HotelCancelled.class);
        }
        return EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE).types(types.build()).build();
    }

    private static SagaDefinition<Trip> trip(boolean failsAfterTheHotel) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("book-hotel")
                    .command("hotel-commands", (trip, ctx) -> new BookHotel(trip.id()))
                    .onReply(HotelBooked.class, (trip, reply) -> new Trip(trip.id(), reply.hotelRef()))
                    .compensationCommand("hotel-cancel-commands", (trip, ctx) -> new CancelHotel(trip.id()))
                    .onCompensationReply(HotelCancelled.class, (trip, reply) -> { })
                    .timeout(Duration.ofMinutes(30))
                    .retry(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .step("charge")
                    .action((trip, ctx) -> {
                        if (failsAfterTheHotel) {
                            throw new IllegalStateException("card declined");
                        }
                        return trip;
                    })
                .build();
    }

    private void assertOneReplyDeadLetteredAsUndecodable() {
        List<Message> deadLetters = transport.messages("saga-replies.DLT");
        assertEquals(1, deadLetters.size());
        Map<String, String> headers = deadLetters.get(0).headers();
        assertEquals(SagaException.class.getName(), headers.get(MessageHeaders.DLT_ERROR_CLASS));
        assertEquals("handler-failed", headers.get(MessageHeaders.DLT_REASON), "the orchestrator's refusal, not the bus's");
        assertTrue(headers.get(MessageHeaders.DLT_ERROR_MESSAGE).contains("cannot be decoded"),
                headers.get(MessageHeaders.DLT_ERROR_MESSAGE));
    }

    /** Runs {@code then} on an orchestrator of the release that reads version 2, over the same store, recovered. */
    private void onTheUpgradedAgency(SagaDefinition<Trip> definition, Consumer<EventBus> then) {
        EventBus newAgency = agency(true);
        try (SagaOrchestrator upgraded = SagaOrchestrator.builder().store(store).bus(newAgency).scheduler(scheduler)
                .register(definition).build()) {
            upgraded.recover();
            then.accept(newAgency);
        } finally {
            newAgency.close();
        }
    }

    @Test
    void aReplyOfAVersionTheOrchestratorCannotReadIsDeadLetteredAndTheStepWaitsForItsRedrive() {
        hotel.subscribe("hotel", "hotel-commands", BookHotel.class,
                (command, ctx) -> SagaMessages.reply(hotel, ctx.message(), new HotelBookedV2("HT-1", "101")));
        SagaDefinition<Trip> definition = trip(false);
        EventBus oldAgency = agency(false);
        try (SagaOrchestrator old = SagaOrchestrator.builder().store(store).bus(oldAgency).scheduler(scheduler)
                .register(definition).build()) {
            old.start(definition, "trip-1", null, new Trip("1", null));
            transport.drainAll();

            assertEquals(StepStatus.WAITING, store.find("trip-1").orElseThrow().step("book-hotel").orElseThrow().status(),
                    "the reply was not taken: the step waits for its timeout");
            assertOneReplyDeadLetteredAsUndecodable();
        } finally {
            oldAgency.close();
        }

        onTheUpgradedAgency(definition, newAgency -> {
            DeadLetterRedrive.Run run = DeadLetterRedrive.builder(newAgency, "saga-replies.DLT").build().start();
            transport.drainAll();

            assertEquals(1, run.finished().toCompletableFuture().join().redriven());
            assertEquals(SagaStatus.COMPLETED, store.find("trip-1").orElseThrow().status());
            assertEquals(new Trip("1", "HT-1"), store.find("trip-1").orElseThrow().data());
        });
    }

    @Test
    void aReplyThatCannotBeDecodedLeavesTheTimeoutOfTheOrchestratorDrivingTheSagaArmed() {
        hotel.subscribe("hotel", "hotel-commands", BookHotel.class,
                (command, ctx) -> SagaMessages.reply(hotel, ctx.message(), new HotelBookedV2("HT-4", "104")));
        SagaDefinition<Trip> definition = trip(false);
        EventBus agency = agency(false);
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(agency).scheduler(scheduler)
                .register(definition).build()) {
            orchestrator.start(definition, "trip-4", null, new Trip("4", null));
            transport.drainAll();
            assertOneReplyDeadLetteredAsUndecodable();

            scheduler.advance(Duration.ofMinutes(30));
            transport.drainAll();

            assertEquals(2, store.find("trip-4").orElseThrow().step("book-hotel").orElseThrow().attempts(),
                    "the wait timed out at its deadline and its retry sent the command again");
            assertEquals(2, transport.messages("saga-replies.DLT").size());
        } finally {
            agency.close();
        }
    }

    @Test
    void aCompensationReplyOfAVersionTheOrchestratorCannotReadIsDeadLetteredAndTheCompensationWaitsOn() {
        hotel.subscribe("hotel", "hotel-commands", BookHotel.class,
                (command, ctx) -> SagaMessages.reply(hotel, ctx.message(), new HotelBookedV2("HT-2", "102")));
        hotel.subscribe("hotel", "hotel-cancel-commands", CancelHotel.class,
                (command, ctx) -> SagaMessages.reply(hotel, ctx.message(), new HotelCancelledV2(command.tripId(), "0")));
        SagaDefinition<Trip> definition = trip(true);
        // A release that reads the booking's version 2 but not the cancellation's.
        EventBus upgradedForBookings = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("book-hotel", 1, BookHotel.class)
                        .register("cancel-hotel", 1, CancelHotel.class)
                        .register("hotel-booked", 2, HotelBooked.class)
                        .register("hotel-cancelled", 1, HotelCancelled.class).build()).build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(upgradedForBookings)
                .scheduler(scheduler).register(definition).build()) {
            orchestrator.start(definition, "trip-2", null, new Trip("2", null));
            transport.drainAll();

            assertEquals(StepStatus.COMPENSATING,
                    store.find("trip-2").orElseThrow().step("book-hotel").orElseThrow().status(),
                    "the cancellation's reply was not taken: the compensation waits for its timeout");
            assertEquals(SagaStatus.COMPENSATING, store.find("trip-2").orElseThrow().status());
            assertOneReplyDeadLetteredAsUndecodable();
        } finally {
            upgradedForBookings.close();
        }

        // The recovery starts the compensation again as a new attempt, whose reply this release reads and which settles
        // it; the first attempt's, redriven, is then superseded.
        onTheUpgradedAgency(definition, newAgency -> {
            transport.drainAll();
            assertEquals(SagaStatus.COMPENSATED, store.find("trip-2").orElseThrow().status());
        });
    }

    @Test
    void aReplyThatCannotBeDecodedReachingAnOrchestratorThatDoesNotDriveTheSagaLeavesItsTimeoutArmedThere() {
        hotel.subscribe("hotel", "hotel-commands", BookHotel.class,
                (command, ctx) -> SagaMessages.reply(hotel, ctx.message(), new HotelBookedV2("HT-3", "103")));
        SagaDefinition<Trip> definition = trip(false);
        EventBus agency = agency(false);
        try {
            try (SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(agency).scheduler(scheduler)
                    .register(definition).build()) {
                first.start(definition, "trip-3", null, new Trip("3", null));
            } // closed before the hotel answers; the next one adopts the saga at the reply, with no recover()
            try (SagaOrchestrator next = SagaOrchestrator.builder().store(store).bus(agency).scheduler(scheduler)
                    .register(definition).build()) {
                transport.drainAll();
                // Adopted as a recovery would: its command sent again (the same id), answered alike, dead-lettered too.
                assertEquals(2, transport.messages("saga-replies.DLT").size());
                assertEquals(1, store.find("trip-3").orElseThrow().step("book-hotel").orElseThrow().attempts());

                scheduler.advance(Duration.ofMinutes(30));
                transport.drainAll();

                assertEquals(2, store.find("trip-3").orElseThrow().step("book-hotel").orElseThrow().attempts(),
                        "the adopted saga's wait timed out at its stored deadline and its retry sent the command again");
                assertEquals(3, transport.messages("saga-replies.DLT").size());
            }
        } finally {
            agency.close();
        }
    }
}
