package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.TripSagaFixture.BookFlight;
import io.streamsaga.inmemory.saga.TripSagaFixture.FlightBooked;
import io.streamsaga.inmemory.saga.TripSagaFixture.Trip;
import io.streamsaga.inmemory.saga.TripSagaFixture.TripData;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The explorer promises "each compensation failing once while the last non-retriable step fails": that
 * includes the compensations of the failing step's siblings in its parallel group, and the failing step's
 * own when it is remote (its failure leaves it uncertain, so it is compensated).
 */
class CrashExplorerCoverageTest {

    static SagaDefinition<TripData> groupLast(Trip t) {
        return SagaDefinition.builder("trip-group-last", TripData.class)
                .step("validate-trip").action((d, ctx) -> d)
                .parallel(group -> {
                    group.step("book-hotel")
                            .action((d, ctx) -> d.withHotel(t.bookHotel(ctx.idempotencyKey())))
                            .compensation((d, ctx) -> t.cancelHotel(ctx.idempotencyKey()));
                    group.step("book-flight")
                            .command("flight-commands", (d, ctx) -> new BookFlight(d.traveller()))
                            .onReply(FlightBooked.class, (d, reply) -> d.withFlight(reply.bookingId()))
                            .timeout(Duration.ofMinutes(5))
                            .compensation((d, ctx) -> t.cancelFlight(ctx.idempotencyKey()));
                    group.merge((current, result) -> new TripData(current.traveller(),
                            result.hotelId() != null ? result.hotelId() : current.hotelId(),
                            result.flightId() != null ? result.flightId() : current.flightId(),
                            current.chargeId(), current.confirmed()));
                })
                .build();
    }

    @Test
    void explorationFailsOnceTheCompensationsOfTheFailingStepsGroupAndOfTheUncertainFailingStep() {
        ExplorationReport report = SagaCrashExplorer
                .forSaga(TripSagaFixture::trip, CrashExplorerCoverageTest::groupLast, new TripData("bob", null, null, null, false))
                .types(TripSagaFixture.types())
                .explore();

        List<String> names = report.scenarios().stream().map(ExplorationReport.Scenario::name).toList();
        assertTrue(names.contains("compensation of book-hotel fails once (book-flight fails)"), "scenarios: " + names);
        assertTrue(names.contains("compensation of book-flight fails once (book-flight fails)"), "scenarios: " + names);
    }
}
