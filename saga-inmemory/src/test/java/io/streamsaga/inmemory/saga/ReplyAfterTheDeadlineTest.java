package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTimeoutException;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step's (or remote compensation's) reply that arrives after the attempt's deadline, its timeout's timer not
 * run yet (a scheduler that is late, here by an hour; a virtual clock moved past the deadline), is the timeout's
 * outcome, as the timer's is when it runs first: the attempt fails with a {@link SagaTimeoutException}, retried or
 * compensated as a timed-out attempt is, and the reply is acknowledged, not dead-lettered. Its handler never runs.
 */
class ReplyAfterTheDeadlineTest {
    private static final Duration TIMEOUT = Duration.ofMinutes(1);
    private static final Duration LATE = Duration.ofHours(1);

    /** A scheduler whose every task runs {@link #LATE} after it is due: a busy or paused scheduler thread. */
    static final class LateScheduler implements Scheduler {
        final VirtualScheduler delegate = new VirtualScheduler();

        @Override
        public Clock clock() {
            return delegate.clock();
        }

        @Override
        public Cancellable schedule(Duration delay, Runnable task) {
            return delegate.schedule(delay.plus(LATE), task);
        }

        @Override
        public void sleep(Duration delay) {
            delegate.sleep(delay);
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    private final LateScheduler scheduler = new LateScheduler();
    private final SeatDeskFixture desk = new SeatDeskFixture(scheduler.delegate); // the bus's timers are not late
    private final EventBus bus = desk.bus;
    private final List<Message> reserveCommands = desk.reserveCommands;
    private final List<Message> releaseCommands = desk.releaseCommands;
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> handled = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        desk.close();
        scheduler.close();
    }

    private void answer(Message command, Object reply) {
        desk.answer(command, reply);
    }

    private List<TransitionType> historyOf(String step) {
        return store.history("saga-1").stream().filter(t -> step.equals(t.step())).map(SagaTransition::type).toList();
    }

    @Test
    void aReplyAfterTheStepsDeadlineBeforeItsLateTimerRanTimesTheAttemptOutAndTheRetrysReplyCompletesTheStep() {
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> {
                    handled.add("reserved " + reply.reserved());
                    return b;
                })
                .timeout(TIMEOUT).retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        desk.transport.drainAll();
        scheduler.delegate.advance(TIMEOUT.multipliedBy(2)); // past the deadline; the timer, an hour late, has not run

        answer(reserveCommands.get(0), new SeatReserved(true));

        assertEquals(List.of(TransitionType.STEP_WAITING, TransitionType.STEP_TIMED_OUT, TransitionType.STEP_WAITING),
                historyOf("reserve-seat"), "the reply after the deadline was not taken for the attempt's timeout");
        assertEquals(List.of(), handled, "the reply's handler ran on a reply that came after the deadline");
        assertEquals(List.of(), desk.deadLetteredReplies(), "the late reply is acknowledged");
        desk.transport.drainAll();
        assertEquals(2, reserveCommands.size(), "the timed-out attempt was not retried");
        assertFalse(result.isDone());

        answer(reserveCommands.get(1), new SeatReserved(true));
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
        assertEquals(List.of("reserved true"), handled);
        scheduler.delegate.advance(LATE.multipliedBy(2)); // the late timers run at last: they change nothing
        assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }

    @Test
    void aReplyAtTheStepsExactDeadlineBeforeItsLateTimerRanIsTheTimeoutsAsTheTimerDueThenWouldHaveMadeIt() {
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> {
                    handled.add("reserved " + reply.reserved());
                    return b;
                })
                .timeout(TIMEOUT).retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Booking("bob"));
        desk.transport.drainAll();
        // The deadline itself: a timer on time runs now and times the attempt out, so a reply now must not complete it.
        scheduler.delegate.advance(TIMEOUT);

        answer(reserveCommands.get(0), new SeatReserved(true));

        assertEquals(List.of(TransitionType.STEP_WAITING, TransitionType.STEP_TIMED_OUT, TransitionType.STEP_WAITING),
                historyOf("reserve-seat"), "a reply at the deadline was taken while the timer due then fails the attempt");
        assertEquals(List.of(), handled, "the reply's handler ran on a reply that came at the deadline");
        assertEquals(List.of(), desk.deadLetteredReplies(), "the reply at the deadline is acknowledged");
        orchestrator.close();
    }

    @Test
    void aReplyAfterTheStepsDeadlineBeforeItsLateTimerRanFailsTheStepAsItsTimeoutAndTheSagaCompensates() {
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("order").action((b, ctx) -> b).compensation((b, ctx) -> handled.add("order undone"))
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> {
                    handled.add("reserved " + reply.reserved());
                    return b;
                })
                .timeout(TIMEOUT).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        desk.transport.drainAll();
        scheduler.delegate.advance(TIMEOUT.multipliedBy(2));

        answer(reserveCommands.get(0), new SeatReserved(true));

        SagaResult<Booking> outcome = result.join();
        assertEquals(SagaOutcome.COMPENSATED, outcome.outcome(), "the reply after the deadline completed the step");
        assertInstanceOf(SagaTimeoutException.class, outcome.cause().orElseThrow());
        assertEquals(List.of("order undone"), handled);
        assertTrue(historyOf("reserve-seat").contains(TransitionType.STEP_TIMED_OUT));
        assertEquals(List.of(), desk.deadLetteredReplies(), "the late reply is acknowledged");
        orchestrator.close();
    }

    @Test
    void aCompensationReplyAfterTheCompensationsDeadlineBeforeItsLateTimerRanIsTheTimeoutsFailure() {
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b)
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> handled.add("released " + reply.released()))
                .compensationTimeout(TIMEOUT).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((b, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        desk.transport.drainAll();
        answer(reserveCommands.get(0), new SeatReserved(true));
        assertEquals(1, releaseCommands.size());
        scheduler.delegate.advance(TIMEOUT.multipliedBy(2)); // past the compensation's deadline; its timer has not run

        answer(releaseCommands.get(0), new SeatReleased(true));

        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status(),
                "the compensation's reply after its deadline was taken for its outcome");
        assertEquals(SagaTimeoutException.class.getName(), result.join().compensationFailure().errorClass());
        assertEquals(List.of(), handled, "the reply's handler ran on a reply that came after the deadline");
        assertEquals(List.of(), desk.deadLetteredReplies(), "the late reply is acknowledged");
        orchestrator.close();
    }
}
