package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A trip booking saga with a parallel group (a local hotel booking and a remote flight booking through a
 * participant on the bus), a local pivot (the card charge) and a retriable confirmation.
 */
final class TripSagaFixture {

    record TripData(String traveller, String hotelId, String flightId, String chargeId, boolean confirmed) {
        TripData withHotel(String id) {
            return new TripData(traveller, id, flightId, chargeId, confirmed);
        }

        TripData withFlight(String id) {
            return new TripData(traveller, hotelId, id, chargeId, confirmed);
        }

        TripData withCharge(String id) {
            return new TripData(traveller, hotelId, flightId, id, confirmed);
        }

        TripData confirm() {
            return new TripData(traveller, hotelId, flightId, chargeId, true);
        }
    }

    record BookFlight(String traveller) {
    }

    record FlightBooked(String bookingId, boolean ok) {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("book-flight", 1, BookFlight.class)
                .register("flight-booked", 1, FlightBooked.class)
                .build();
    }

    /** The application: a hotel service, a flight participant on the bus, a card service; all idempotent. */
    static final class Trip {
        final Set<String> applied = new HashSet<>();
        int hotels;
        int hotelCancellations;
        int flights;
        int flightCancellations;
        int flightCommands;
        int charges;
        int confirmations;
        boolean flightParticipantDown;

        Trip(EventBus bus) {
            bus.subscribe("flight-service", "flight-commands", BookFlight.class, (command, ctx) -> {
                Message message = ctx.message();
                String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    flightCommands++;
                    if (flightParticipantDown) {
                        return; // no reply: the saga's timeout decides
                    }
                    // A tombstone left by an earlier cancellation wins: the booking is refused.
                    boolean cancelled = applied.contains("flight-cancel:" + key);
                    if (!cancelled && applied.add("flight:" + key)) {
                        flights++;
                    }
                    SagaMessages.reply(bus, message, new FlightBooked("flight-" + key, !cancelled));
                }
            });
        }

        synchronized String bookHotel(String key) {
            if (applied.add("hotel:" + key)) {
                hotels++;
            }
            return "hotel-" + key;
        }

        synchronized void cancelHotel(String key) {
            if (applied.contains("hotel:" + key) && applied.add("hotel-cancel:" + key)) {
                hotelCancellations++;
            }
        }

        synchronized void cancelFlight(String key) {
            boolean booked = applied.contains("flight:" + key);
            if (applied.add("flight-cancel:" + key) && booked) {
                flightCancellations++;
            }
        }

        synchronized String charge(String key) {
            if (applied.add("charge:" + key)) {
                charges++;
            }
            return "charge-" + key;
        }

        synchronized void confirm(String key) {
            if (applied.add("confirm:" + key)) {
                confirmations++;
            }
        }
    }

    static Trip trip(SagaTestEnvironment env) {
        return new Trip(env.bus());
    }

    static SagaDefinition<TripData> definition(Trip t) {
        return SagaDefinition.builder("trip-saga", TripData.class)
                .dataType("trip-saga-data")
                .step("validate-trip").action((d, ctx) -> {
                    if (d.traveller().isBlank()) {
                        throw new IllegalArgumentException("no traveller");
                    }
                    return d;
                })
                .parallel(group -> {
                    group.step("book-hotel")
                            .action((d, ctx) -> d.withHotel(t.bookHotel(ctx.idempotencyKey())))
                            .compensation((d, ctx) -> t.cancelHotel(ctx.idempotencyKey()));
                    group.step("book-flight")
                            .command("flight-commands", (d, ctx) -> new BookFlight(d.traveller()))
                            .onReply(FlightBooked.class, (d, reply) -> {
                                if (!reply.ok()) {
                                    throw new IllegalStateException("flight refused");
                                }
                                return d.withFlight(reply.bookingId());
                            })
                            .timeout(Duration.ofMinutes(5))
                            .compensation((d, ctx) -> t.cancelFlight(ctx.idempotencyKey()));
                    // Members change different fields: merge them instead of letting the last one win.
                    group.merge((current, result) -> new TripData(current.traveller(),
                            result.hotelId() != null ? result.hotelId() : current.hotelId(),
                            result.flightId() != null ? result.flightId() : current.flightId(),
                            current.chargeId(), current.confirmed()));
                })
                .pivot("charge-card").action((d, ctx) -> d.withCharge(t.charge(ctx.idempotencyKey())))
                .retriable("send-confirmation").action((d, ctx) -> {
                    t.confirm(ctx.idempotencyKey());
                    return d.confirm();
                }).retry(RetryPolicy.builder().maxAttempts(10).initialBackoff(Duration.ofSeconds(1)).build())
                .build();
    }

    static void consistent(Trip t, SagaRunReport<Trip, TripData> run) {
        assertTrue(t.hotels <= 1 && t.flights <= 1 && t.charges <= 1 && t.confirmations <= 1, "an effect was applied twice");
        if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(1, t.hotels);
            assertEquals(1, t.flights);
            assertEquals(1, t.charges);
            assertEquals(1, t.confirmations);
            assertEquals(0, t.hotelCancellations + t.flightCancellations);
            TripData data = run.result().data();
            assertTrue(data.hotelId() != null && data.flightId() != null && data.chargeId() != null && data.confirmed(),
                    "merged data " + data);
        } else {
            assertEquals(t.hotels, t.hotelCancellations, "hotels booked vs cancelled");
            assertEquals(t.flights, t.flightCancellations, "flights booked vs cancelled");
            assertEquals(0, t.charges + t.confirmations, "charges and confirmations");
        }
    }

    private TripSagaFixture() {
    }
}
