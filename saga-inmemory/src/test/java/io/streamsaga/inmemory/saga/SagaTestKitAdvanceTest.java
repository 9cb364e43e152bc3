package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code advance(duration)} settles the run at each due time before it moves on, as {@code settle()} does: the
 * messages a timer's task sent are delivered, the work it handed to the environment's executor ends, and what
 * that scheduled for the same instant runs, before the next timer (also one due at the same instant) and before
 * advance returns. It used to run every timer up to the target first and deliver only at the end, so a reply sent
 * at 30 s was handled after the step's timeout at 45 s, and a reply scheduled for the instant it reached was left
 * pending.
 */
class SagaTestKitAdvanceTest {
    record Trip(String id) {
    }

    record Book(String id) {
    }

    record Booked(String id) {
    }

    static final TypeRegistry TYPES = TypeRegistry.builder()
            .register("book", 1, Book.class).register("booked", 1, Booked.class).build();

    /** A participant that answers each command from a task on the environment's scheduler, {@code delay} later. */
    static final class Airline {
        final List<String> attempts = new CopyOnWriteArrayList<>();

        Airline(SagaTestEnvironment env, Duration delay, Function<String, Boolean> answers) {
            env.bus().subscribe("airline", "book-commands", Book.class, (command, ctx) -> {
                Message message = ctx.message();
                String attempt = message.header(SagaMessages.ATTEMPT).orElseThrow();
                attempts.add(attempt);
                if (answers.apply(attempt)) {
                    env.scheduler().schedule(delay, () -> SagaMessages.reply(env.bus(), message, new Booked(command.id())));
                }
            });
        }
    }

    static SagaDefinition<Trip> booking(Duration timeout, RetryPolicy retry) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("book").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                .onReply(Booked.class, (trip, reply) -> trip)
                .timeout(timeout).retry(retry)
                .build();
    }

    @Test
    void aReplySentByATimerBeforeTheStepsTimeoutIsHandledBeforeTheTimeoutFires() {
        SagaRunReport<Airline, Trip> run = SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), attempt -> true),
                        airline -> booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-1"))
                .types(TYPES)
                .whenStarted();

        run.advance(Duration.ofMinutes(1)) // the reply is sent at 30 s, the step would time out at 45 s
                .expectCompleted();
        assertTrue(run.history().stream().noneMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT), run.sequenceDiagram());
    }

    @Test
    void aNegativeOrNullAdvanceIsRefusedNamingItAndLeavesTheRunOpenWhereItWas() {
        SagaRunReport<Airline, Trip> run = SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), attempt -> true),
                        airline -> booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-4"))
                .types(TYPES)
                .whenStarted();
        java.time.Instant started = run.environment().scheduler().now();

        // before, taken as zero: the test read a saga that had not moved as one checked after a step back in time
        ConfigurationException negative = assertThrows(ConfigurationException.class,
                () -> run.advance(Duration.ofSeconds(-30)));
        ConfigurationException none = assertThrows(ConfigurationException.class, () -> run.advance(null));

        assertEquals("advance(Duration) cannot move the virtual clock backwards: its duration must be zero or positive,"
                + " but was PT-30S", negative.getMessage());
        assertTrue(none.getMessage().endsWith("but was null"), none.getMessage());
        assertFalse(run.isClosed(), "a refused advance closed the run");
        assertEquals(started, run.environment().scheduler().now());
        run.advance(Duration.ofSeconds(30)).expectCompleted(); // the test goes on
    }

    @Test
    void whatATimeoutsRetryLeadsToAtTheSameInstantRunsBeforeAdvanceReturns() {
        // The first command goes unanswered; its timeout at 30 s retries at once (no backoff), and the airline
        // answers the second command from a task due at that same instant: advance(30 s) reaches it.
        SagaRunReport<Airline, Trip> run = SagaTestKit.given(env -> new Airline(env, Duration.ZERO, attempt -> !attempt.equals("1")),
                        airline -> booking(Duration.ofSeconds(30), RetryPolicy.builder().maxAttempts(2).noBackoff().build()),
                        new Trip("t-2"))
                .types(TYPES)
                .whenStarted();

        run.advance(Duration.ofSeconds(30))
                .expectCompleted();
        assertEquals(List.of("1", "2"), run.fixture().attempts);
    }

    /**
     * A step's first attempt fails from a task on the scheduler, which then arms a timer of the application's due
     * at the same instant as the step's retry (1 s later, armed just before it). The retry hands its work to the
     * executor: that work ends once the kit waits for the executor, or once the application's timer ran (were the
     * kit to run the next timer first), and records which it saw.
     */
    private static SagaTestKit<SagaTestEnvironment, Trip> retryAndATimerAtTheSameInstant(List<String> events) {
        return SagaTestKit.given(env -> env, env -> {
                    Thread testThread = Thread.currentThread();
                    return SagaDefinition.builder("trip", Trip.class)
                            .step("hotel").asyncAction((trip, ctx) -> {
                                if (ctx.attempt() == 1) {
                                    CompletableFuture<Trip> refused = new CompletableFuture<>();
                                    env.scheduler().schedule(Duration.ZERO, () -> {
                                        refused.completeExceptionally(new IllegalStateException("hotel busy"));
                                        env.scheduler().schedule(Duration.ofSeconds(1), () -> events.add("timer"));
                                    });
                                    return refused;
                                }
                                return CompletableFuture.supplyAsync(() -> {
                                    await().atMost(Duration.ofSeconds(20)).until(() -> events.contains("timer")
                                            || testThread.getState() == Thread.State.TIMED_WAITING);
                                    events.add("hotel done");
                                    return trip;
                                }, env.executor());
                            })
                            .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                            .build();
                }, new Trip("t-3"));
    }

    @Test
    void advanceWaitsForTheWorkOfEachTimerAlsoBeforeAnotherDueAtTheSameInstant() {
        List<String> events = new CopyOnWriteArrayList<>();
        SagaRunReport<SagaTestEnvironment, Trip> run = retryAndATimerAtTheSameInstant(events).whenStarted();

        run.advance(Duration.ofSeconds(1))
                .expectCompleted();
        assertEquals(List.of("hotel done", "timer"), events);
    }

    @Test
    void settleWaitsForTheWorkOfEachTimerAlsoBeforeAnotherDueAtTheSameInstant() {
        List<String> events = new CopyOnWriteArrayList<>();
        retryAndATimerAtTheSameInstant(events).whenRun()
                .expectCompleted();

        assertEquals(List.of("hotel done", "timer"), events);
    }
}
