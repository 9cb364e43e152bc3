package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A remote step's deadline (stored with its {@code WAITING} state) and a remote compensation's count from the attempt's
 * command, built: not from a clock reading the engine took before the command's factory ran, nor before the
 * application's code that ran first on the driving thread (a metrics recorder hearing of the saga's start). Such code
 * taking a minute of virtual time (through {@code scheduler.sleep}) leaves the participant its whole ten seconds: a
 * reply nine seconds after the command completes the step, or the compensation.
 */
class RemoteDeadlineAfterSlowApplicationCodeTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Duration SLOW = Duration.ofMinutes(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final SeatDeskFixture desk = new SeatDeskFixture(scheduler);
    private final EventBus bus = desk.bus;
    private final InMemoryTransport transport = desk.transport;
    private final List<Message> reserveCommands = desk.reserveCommands;
    private final List<Message> releaseCommands = desk.releaseCommands;
    private final InMemorySagaStore store = new InMemorySagaStore();

    @AfterEach
    void close() {
        desk.close();
        scheduler.close();
    }

    /** The participant answers {@code command} nine seconds after it was sent, within its ten. */
    private void answerWithinTheTimeout(Message command, Object reply) {
        scheduler.advance(TIMEOUT.minusSeconds(1));
        desk.answer(command, reply);
    }

    /** The remote step reserve-seat, its command built by {@code slow} (a minute, or at once), with a ten-second timeout. */
    private SagaDefinition.StepBuilder<Booking> reserveSeat(boolean slow) {
        return SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> {
                    if (slow) {
                        scheduler.sleep(SLOW); // a factory that looks the fare up, say, for a minute
                    }
                    return new ReserveSeat(b.passenger());
                })
                .onReply(SeatReserved.class, (b, reply) -> b)
                .timeout(TIMEOUT).retry(RetryPolicy.NONE);
    }

    private void assertNothingTimedOutAndItEnded(SagaStatus status) {
        List<TransitionType> timedOut = store.history("saga-1").stream().map(t -> t.type())
                .filter(t -> t == TransitionType.STEP_TIMED_OUT || t == TransitionType.COMPENSATION_FAILED).toList();
        assertEquals(List.of(), timedOut, store.history("saga-1").toString());
        assertEquals(status, store.find("saga-1").orElseThrow().status());
    }

    @Test
    void aRemoteStepWhoseCommandFactoryTakesAMinuteStoresADeadlineCountedFromTheCommandAndTakesAReplyWithinIt() {
        SagaDefinition<Booking> definition = reserveSeat(true).build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build()) {
            orchestrator.start(definition, "saga-1", null, new Booking("bob"));
            transport.drainAll();
            var waiting = store.find("saga-1").orElseThrow().step("reserve-seat").orElseThrow();
            assertEquals(StepStatus.WAITING, waiting.status());
            assertEquals(scheduler.now().plus(TIMEOUT), waiting.dueAt(), "the deadline counts from before the factory ran");

            answerWithinTheTimeout(reserveCommands.get(0), new SeatReserved(true));

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
        }
    }

    @Test
    void aRemoteStepStartedAfterASlowMetricsRecorderHeardOfTheStartTakesAReplyWithinItsTimeout() {
        SagaDefinition<Booking> definition = reserveSeat(false).build();
        MetricsRecorder slowOnStart = new MetricsRecorder() {
            @Override
            public void sagaStarted(String sagaName) {
                scheduler.sleep(SLOW); // a recorder pushing to a remote registry, say, that takes a minute
            }
        };
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .metrics(slowOnStart).register(definition).build()) {
            orchestrator.start(definition, "saga-1", null, new Booking("bob"));
            transport.drainAll();

            answerWithinTheTimeout(reserveCommands.get(0), new SeatReserved(true));

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
        }
    }

    @Test
    void aRemoteCompensationWhoseCommandFactoryTakesAMinuteTakesAReplyWithinItsTimeout() {
        SagaDefinition<Booking> definition = reserveSeat(false)
                .compensationCommand("seat-release-commands", (b, ctx) -> {
                    scheduler.sleep(SLOW);
                    return new ReleaseSeat(b.passenger());
                })
                .onCompensationReply(SeatReleased.class, (b, reply) -> { })
                .compensationRetry(RetryPolicy.NONE)
                .step("charge").action((b, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build()) {
            orchestrator.start(definition, "saga-1", null, new Booking("bob"));
            transport.drainAll();
            desk.answer(reserveCommands.get(0), new SeatReserved(true));
            assertEquals(1, releaseCommands.size());

            answerWithinTheTimeout(releaseCommands.get(0), new SeatReleased(true));

            assertNothingTimedOutAndItEnded(SagaStatus.COMPENSATED);
        }
    }
}
