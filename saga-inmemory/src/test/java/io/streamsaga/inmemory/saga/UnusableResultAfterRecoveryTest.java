package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A parallel member whose action took effect but whose result the group's merge refused is uncertain, so it must be
 * compensated ("every completed step compensated", docs/sagas.md). It used to be retried per its policy, its
 * uncertainty held only by the run: after a restart while the retry waited, a retry failing without effect left the
 * member FAILED and the effect of the refused attempt was never undone. A refused result now fails the member for good.
 */
class UnusableResultAfterRecoveryTest {
    record Trip(String hotel, String car) {
    }

    @Test
    void aMemberWhoseResultTheMergeRefusedIsCompensatedNotRetriedSoNoRestartLeavesItsEffectUndone() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        List<String> effects = new CopyOnWriteArrayList<>();
        AtomicInteger hotelAttempts = new AtomicInteger();
        AtomicBoolean mergeRefuses = new AtomicBoolean(true);
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("book-hotel").action((trip, ctx) -> {
                        if (hotelAttempts.incrementAndGet() > 1) {
                            throw new IllegalStateException("hotel full"); // the retry books nothing
                        }
                        effects.add("hotel booked");
                        return new Trip("h-1", trip.car());
                    }).compensation((trip, ctx) -> effects.add("hotel cancelled"))
                            .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(10)).jitter(0).build());
                    group.step("rent-car").action((trip, ctx) -> {
                        effects.add("car rented");
                        return new Trip(trip.hotel(), "c-1");
                    }).compensation((trip, ctx) -> effects.add("car returned"));
                    group.merge((current, result) -> {
                        if (result.hotel() != null && mergeRefuses.getAndSet(false)) {
                            throw new IllegalStateException("merge refused the hotel's result");
                        }
                        return new Trip(result.hotel() != null ? result.hotel() : current.hotel(),
                                result.car() != null ? result.car() : current.car());
                    });
                })
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition).build();
        first.start(definition, "trip-1", null, new Trip(null, null));
        first.close(); // the process stops (before, the hotel's retry was waiting then)

        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition).build();
        second.recover();
        scheduler.advance(Duration.ofMinutes(2));

        assertEquals(SagaStatus.COMPENSATED, store.find("trip-1").orElseThrow().status());
        assertEquals(1, effects.stream().filter("hotel cancelled"::equals).count(),
                "the hotel booked by the attempt whose result the merge refused is not cancelled once: " + effects);
        assertEquals(1, hotelAttempts.get(), "a refused result is not retried");
        assertEquals(StepStatus.COMPENSATED, store.find("trip-1").orElseThrow().step("book-hotel").orElseThrow().status());
        second.close();
    }

    /**
     * A parallel group of one member runs on the starting thread, and a definition of such groups, local and
     * synchronous, is driven straight through (SagaRun.forwardStraight), which applied the group's merge unguarded: a
     * merge that threw went out of start() as a bare IllegalStateException, the saga left RUNNING with the member's
     * effect in place and nothing compensated until a recovery. The member now fails for good as uncertain there too,
     * and is compensated with the steps before it.
     */
    @Test
    void aLoneMemberWhoseResultTheMergeRefusesOnTheStraightPathIsCompensatedWithTheStepsBeforeIt() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        List<String> effects = new CopyOnWriteArrayList<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("rent-car").action((trip, ctx) -> {
                    effects.add("car rented");
                    return new Trip(trip.hotel(), "c-1");
                }).compensation((trip, ctx) -> effects.add("car returned"))
                .parallel(group -> {
                    group.step("book-hotel").action((trip, ctx) -> {
                        effects.add("hotel booked");
                        return new Trip("h-1", trip.car());
                    }).compensation((trip, ctx) -> effects.add("hotel cancelled"));
                    group.merge((current, result) -> {
                        throw new IllegalStateException("merge refused the hotel's result");
                    });
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .build();

        io.streamsaga.saga.SagaResult<Trip> result = orchestrator.start(definition, "trip-1", null, new Trip(null, null))
                .toCompletableFuture().join();

        assertEquals(io.streamsaga.saga.SagaOutcome.COMPENSATED, result.outcome(), result.toString());
        assertEquals("book-hotel", result.failure().step());
        assertEquals(List.of("car rented", "hotel booked", "hotel cancelled", "car returned"), effects);
        assertEquals(StepStatus.COMPENSATED, store.find("trip-1").orElseThrow().step("book-hotel").orElseThrow().status());
        orchestrator.close();
        scheduler.close();
    }
}
