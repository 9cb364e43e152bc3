package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.SeatDeskFixture.Booking;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReleaseSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.ReserveSeat;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReleased;
import io.streamsaga.inmemory.saga.SeatDeskFixture.SeatReserved;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A remote compensation's reply that a transport delivers on the thread that publishes its command, the participant
 * answering at once (a transport delivering synchronously, here a manually drained in-memory transport drained by each
 * send), arrives while the engine is still sending the command: it is checked against the deadline of the attempt that
 * command starts, not against the (past) deadline of the attempt before it, which a retry's command would otherwise
 * find still stored and time out on. A remote step's reply on the sending thread, whose deadline and timer the forward
 * path sets before it publishes, is the guard that that path keeps the same order.
 */
class CompensationReplyOnTheSendingThreadTest {
    private static final Duration TIMEOUT = Duration.ofMinutes(1);

    /** Delivers every record sent at once, on the sending thread (a record sent while it delivers, in the same pass). */
    static final class DeliveringOnSendTransport extends ForwardingTransport {
        private final InMemoryTransport delegate;
        private boolean delivering;

        DeliveringOnSendTransport() {
            this(InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build());
        }

        private DeliveringOnSendTransport(InMemoryTransport delegate) {
            super(delegate);
            this.delegate = delegate;
        }

        @Override
        public String name() {
            return "delivering-on-send";
        }

        @Override
        public synchronized CompletionStage<RecordPosition> send(Message message) {
            CompletionStage<RecordPosition> sent = delegate.send(message);
            if (!delivering) {
                delivering = true;
                try {
                    delegate.drainAll();
                } finally {
                    delivering = false;
                }
            }
            return sent;
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final DeliveringOnSendTransport transport = new DeliveringOnSendTransport();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                    .register("seat-reserved", 1, SeatReserved.class).register("release-seat", 1, ReleaseSeat.class)
                    .register("seat-released", 1, SeatReleased.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> releases = new CopyOnWriteArrayList<>();

    private SagaOrchestrator orchestrator;

    @AfterEach
    void close() {
        if (orchestrator != null) {
            orchestrator.close();
        }
        bus.close();
        transport.close();
        scheduler.close();
    }

    /**
     * A seat saga whose charge fails, so that its seat is released (a remote compensation bounded by {@link #TIMEOUT},
     * retried per {@code retry}), started; the desk reserves every seat at once and answers each release command with
     * what {@code answer} gives for its attempt (null: no answer), at once. The release's handler refuses a seat not
     * released.
     */
    private CompletableFuture<SagaResult<Booking>> started(RetryPolicy retry, IntFunction<SeatReleased> answer) {
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("airline", "seat-commands", ReserveSeat.class, earliest,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new SeatReserved(true)));
        bus.subscribe("airline-releases", "seat-release-commands", ReleaseSeat.class, earliest, (command, ctx) -> {
            String attempt = ctx.message().header(SagaMessages.ATTEMPT).orElseThrow();
            releases.add(attempt);
            SeatReleased reply = answer.apply(Integer.parseInt(attempt));
            if (reply != null) {
                SagaMessages.reply(bus, ctx.message(), reply);
            }
        });
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b)
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                    if (!reply.released()) {
                        throw new IllegalStateException("seat not released");
                    }
                })
                .compensationTimeout(TIMEOUT).compensationRetry(retry)
                .step("charge").action((b, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition).build();
        return orchestrator.start(definition, "saga-1", null, new Booking("bob")).toCompletableFuture();
    }

    @Test
    void aRetriedCompensationsReplyDeliveredWhileItsCommandIsSentIsCheckedAgainstThatAttemptsDeadline() {
        // The desk misses the first release (its attempt times out) and answers the retry's at once.
        CompletableFuture<SagaResult<Booking>> result = started(RetryPolicy.builder().maxAttempts(2).noBackoff().build(),
                attempt -> attempt == 1 ? null : new SeatReleased(true));
        assertEquals(List.of("1"), releases, "the first release was not sent");

        scheduler.advance(TIMEOUT); // the first attempt times out; the retry's command is answered while it is sent

        assertEquals(List.of("1", "2"), releases);
        assertEquals(SagaOutcome.COMPENSATED, result.join().outcome(),
                "the retry's reply was checked against the first attempt's deadline: " + store.history("saga-1").stream()
                        .map(SagaTransition::toString).toList());
        assertEquals(List.of(TransitionType.COMPENSATION_STARTED, TransitionType.COMPENSATION_RETRY_SCHEDULED,
                        TransitionType.COMPENSATION_STARTED, TransitionType.COMPENSATION_SUCCEEDED),
                store.history("saga-1").stream().filter(t -> "reserve-seat".equals(t.step()))
                        .map(SagaTransition::type).filter(t -> t.name().startsWith("COMPENSATION")).toList());
    }

    @Test
    void aCompensationRefusedWhileItsCommandIsSentIsRetriedAfterItsBackoffNotLeftWaitingForItsTimeout() {
        // The desk answers every release at once: the first time that it could not release the seat.
        CompletableFuture<SagaResult<Booking>> result = started(RetryPolicy.builder().maxAttempts(2)
                .initialBackoff(Duration.ofSeconds(1)).jitter(0).build(), attempt -> new SeatReleased(attempt != 1));
        assertEquals(List.of("1"), releases);

        // The retry's timer, armed while the first command was sent, is the step's: the attempt's timeout, armed once
        // the send returned, must not take its place.
        scheduler.advance(Duration.ofSeconds(1));

        assertEquals(List.of("1", "2"), releases, "the refused compensation was not retried after its backoff");
        assertEquals(SagaOutcome.COMPENSATED, result.join().outcome());
    }

    @Test
    void aRemoteStepRefusedWhileItsCommandIsSentIsRetriedAfterItsBackoffAndItsRetrysReplyTaken() {
        // The forward path arms the attempt's timeout and stores its deadline before it publishes: a reply on the sending
        // thread finds both, and nothing is armed after it that would take the retry timer's slot.
        List<String> reservations = new CopyOnWriteArrayList<>();
        bus.subscribe("airline", "seat-commands", ReserveSeat.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> {
                    String attempt = ctx.message().header(SagaMessages.ATTEMPT).orElseThrow();
                    reservations.add(attempt);
                    SagaMessages.reply(bus, ctx.message(), new SeatReserved(!"1".equals(attempt)));
                });
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> {
                    if (!reply.reserved()) {
                        throw new IllegalStateException("no seat");
                    }
                    return b;
                })
                .timeout(TIMEOUT).retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .build();
        orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition).build();
        CompletableFuture<SagaResult<Booking>> result =
                orchestrator.start(definition, "saga-1", null, new Booking("bob")).toCompletableFuture();
        assertEquals(List.of("1"), reservations);

        scheduler.advance(Duration.ofSeconds(1));

        assertEquals(List.of("1", "2"), reservations, "the refused step was not retried after its backoff");
        assertEquals(SagaOutcome.COMPLETED, result.join().outcome());
    }
}
