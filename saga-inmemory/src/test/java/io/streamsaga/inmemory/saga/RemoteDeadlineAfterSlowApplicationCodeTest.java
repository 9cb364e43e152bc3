package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A remote step's deadline (stored with its {@code WAITING} state) and a remote compensation's count from the attempt's
 * command, built: not from a clock reading the engine took before the command's factory ran, nor before the
 * application's code that ran first on the driving thread (a metrics recorder hearing of the saga's start). Such code
 * taking a minute of virtual time (through {@code scheduler.sleep}) leaves the participant its whole ten seconds: a
 * reply nine seconds after the command completes the step, or the compensation.
 */
class RemoteDeadlineAfterSlowApplicationCodeTest {
    record Booking(String passenger) {
    }

    record ReserveSeat(String passenger) {
    }

    record SeatReserved(boolean reserved) {
    }

    record ReleaseSeat(String passenger) {
    }

    record SeatReleased(boolean released) {
    }

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Duration SLOW = Duration.ofMinutes(1);

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                    .register("seat-reserved", 1, SeatReserved.class).register("release-seat", 1, ReleaseSeat.class)
                    .register("seat-released", 1, SeatReleased.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<Message> reserveCommands = new CopyOnWriteArrayList<>();
    private final List<Message> releaseCommands = new CopyOnWriteArrayList<>();

    RemoteDeadlineAfterSlowApplicationCodeTest() {
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("airline", "seat-commands", ReserveSeat.class, earliest,
                (command, ctx) -> reserveCommands.add(ctx.message()));
        bus.subscribe("airline-releases", "seat-release-commands", ReleaseSeat.class, earliest,
                (command, ctx) -> releaseCommands.add(ctx.message()));
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    /** The participant answers {@code command} nine seconds after it was sent, within its ten. */
    private void answerWithinTheTimeout(Message command, Object reply) {
        scheduler.advance(TIMEOUT.minusSeconds(1));
        SagaMessages.reply(bus, command, reply);
        transport.drainAll();
    }

    /** The remote step reserve-seat, its command built by {@code slow} (a minute, or at once), with a ten-second timeout. */
    private SagaDefinition.StepBuilder<Booking> reserveSeat(boolean slow) {
        return SagaDefinition.builder("seat-saga", Booking.class)
                .remoteStep("reserve-seat").command("seat-commands", (b, ctx) -> {
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
            SagaMessages.reply(bus, reserveCommands.get(0), new SeatReserved(true));
            transport.drainAll();
            assertEquals(1, releaseCommands.size());

            answerWithinTheTimeout(releaseCommands.get(0), new SeatReleased(true));

            assertNothingTimedOutAndItEnded(SagaStatus.COMPENSATED);
        }
    }
}
