package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The synchronous actions and the compensations of a parallel group's members run concurrently. */
class ParallelMembersTest {
    record Trip(String id) {
    }

    @Test
    void synchronousMembersOfAGroupRunAtTheSameTime() {
        // Each member waits until both have started: run one after another, the first would wait in vain.
        CountDownLatch bothStarted = new CountDownLatch(2);
        List<String> threads = new CopyOnWriteArrayList<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> meet(bothStarted, threads, trip));
                    group.step("flight").action((trip, ctx) -> meet(bothStarted, threads, trip));
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            SagaResult<Trip> result = orchestrator.start(definition, new Trip("t-1")).toCompletableFuture().join();
            assertTrue(result.isCompleted(), result.toString());
        }
        assertEquals(2, threads.size());
        assertTrue(threads.stream().allMatch(name -> name.startsWith("saga-parallel-")), threads.toString());
    }

    private static Trip meet(CountDownLatch bothStarted, List<String> threads, Trip trip) throws InterruptedException {
        threads.add(Thread.currentThread().getName());
        bothStarted.countDown();
        if (!bothStarted.await(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("the other member never started");
        }
        return trip;
    }

    @Test
    void aSynchronousMemberThatOverrunsItsTimeoutFailsTheGroupAndTheOtherMemberIsCompensated() {
        VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<String> hotelCancelled = new CompletableFuture<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> hotelCancelled.complete(ctx.idempotencyKey()));
                    group.step("flight").action((trip, ctx) -> {
                        release.await(); // a call that hangs
                        return trip;
                    }).timeout(Duration.ofSeconds(5));
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(scheduler)
                .build()) {
            CompletableFuture<SagaResult<Trip>> result =
                    orchestrator.start(definition, "trip-2", null, new Trip("t-2")).toCompletableFuture();
            // Both members started (and the flight's timeout armed) before start returned; wait for the hotel.
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> orchestrator.find("trip-2")
                    .flatMap(instance -> instance.step("hotel")).map(step -> step.status() == StepStatus.SUCCEEDED)
                    .orElse(false));
            scheduler.advance(Duration.ofSeconds(6));
            SagaResult<Trip> outcome = result.join();
            assertTrue(outcome.isCompensated(), outcome.toString());
            assertInstanceOf(SagaTimeoutException.class, outcome.exception());
            assertTrue(hotelCancelled.join().endsWith("/hotel"));
        } finally {
            release.countDown();
        }
    }

    @Test
    void theCompensationsOfAGroupsMembersRunAtTheSameTimeAndBeforeThoseOfTheStepsBeforeTheGroup() {
        // Each member's compensation waits until both have started: one after another, the first would wait in vain.
        CountDownLatch bothCompensating = new CountDownLatch(2);
        List<String> threads = new CopyOnWriteArrayList<>();
        List<String> undone = new CopyOnWriteArrayList<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("reserve").action((trip, ctx) -> trip).compensation((trip, ctx) -> undone.add("reserve"))
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> {
                        meet(bothCompensating, threads, trip);
                        undone.add("hotel");
                    });
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> {
                        meet(bothCompensating, threads, trip);
                        undone.add("flight");
                    });
                })
                .step("pay").action((trip, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            SagaResult<Trip> result = orchestrator.start(definition, new Trip("t-3")).toCompletableFuture().join();
            assertTrue(result.isCompensated(), result.toString());
        }
        assertEquals(2, threads.size());
        assertTrue(threads.stream().allMatch(name -> name.startsWith("saga-parallel-")), threads.toString());
        assertEquals(3, undone.size(), undone.toString());
        assertTrue(undone.subList(0, 2).containsAll(List.of("hotel", "flight")), undone.toString());
        assertEquals("reserve", undone.get(2));
    }

    @Test
    void aMemberWhoseCompensationFailsForGoodStopsTheSagaForAttentionOnceTheOtherMemberIsCompensated() {
        CountDownLatch hotelTried = new CountDownLatch(1);
        List<String> undone = new CopyOnWriteArrayList<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("reserve").action((trip, ctx) -> trip).compensation((trip, ctx) -> undone.add("reserve"))
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> {
                        hotelTried.countDown();
                        throw new IllegalStateException("the hotel refuses to cancel");
                    }).compensationRetry(RetryPolicy.NONE);
                    // Settles after the hotel failed: the saga must still wait for it before it stops.
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> {
                        if (!hotelTried.await(30, TimeUnit.SECONDS)) {
                            throw new IllegalStateException("the hotel's compensation never ran");
                        }
                        undone.add("flight");
                    });
                })
                .step("pay").action((trip, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            SagaResult<Trip> result = orchestrator.start(definition, "trip-4", null, new Trip("t-4"))
                    .toCompletableFuture().join();
            assertTrue(result.needsAttention(), result.toString());
            assertEquals("hotel", result.compensationFailure().step());
            assertEquals(StepStatus.COMPENSATED, orchestrator.find("trip-4").orElseThrow().step("flight").orElseThrow().status());
        }
        assertEquals(List.of("flight"), undone);
        assertFalse(undone.contains("reserve"));
    }

    @Test
    void aCompensationTheParallelExecutorRejectsIsAFailedAttemptNotAStuckSaga() {
        AtomicInteger tasks = new AtomicInteger();
        Executor acceptsTheActionsOnly = task -> {
            if (tasks.incrementAndGet() > 2) {
                throw new RejectedExecutionException("the pool is full");
            }
            task.run();
        };
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                            .compensationRetry(RetryPolicy.NONE);
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                            .compensationRetry(RetryPolicy.NONE);
                })
                .step("pay").action((trip, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .parallelExecutor(acceptsTheActionsOnly).build()) {
            SagaResult<Trip> result = orchestrator.start(definition, "trip-5", null, new Trip("t-5"))
                    .toCompletableFuture().join();
            assertTrue(result.needsAttention(), result.toString());
            assertEquals(RejectedExecutionException.class.getName(), result.compensationFailure().errorClass());
            SagaInstance stored = orchestrator.find("trip-5").orElseThrow();
            assertEquals(StepStatus.COMPENSATION_FAILED, stored.step("hotel").orElseThrow().status());
            assertEquals(StepStatus.COMPENSATION_FAILED, stored.step("flight").orElseThrow().status());
        }
    }
}
