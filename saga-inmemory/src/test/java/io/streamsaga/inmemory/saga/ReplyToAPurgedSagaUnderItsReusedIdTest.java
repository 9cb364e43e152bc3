package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A saga id used again once retention purged its saga: the participant's late reply to the purged saga's command has
 * the same saga id, step and attempt as the new saga's command, but names (as its causation id, which {@link
 * SagaMessages#reply} sets to the id of the command it answers) a command of another saga, whose start is in that id.
 * It is acknowledged and ignored, neither taken for the new saga's outcome nor dead-lettered; the new saga's own reply
 * completes its step. A reply that names no command (built by hand, outside the command's handler) cannot tell, and is
 * taken by whichever saga of that id waits.
 */
class ReplyToAPurgedSagaUnderItsReusedIdTest {
    record Booking(String passenger) {
    }

    record ReserveSeat(String passenger) {
    }

    record SeatReserved(String passenger) {
    }

    private static final Duration TIMEOUT = Duration.ofMinutes(1);

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                    .register("seat-reserved", 1, SeatReserved.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<Message> reserveCommands = new CopyOnWriteArrayList<>();
    private final List<String> reserved = new CopyOnWriteArrayList<>();
    private final SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
            .step("reserve-seat").command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
            .onReply(SeatReserved.class, (b, reply) -> {
                reserved.add(reply.passenger());
                return b;
            })
            .timeout(TIMEOUT).retry(RetryPolicy.NONE)
            .build();

    ReplyToAPurgedSagaUnderItsReusedIdTest() {
        bus.subscribe("airline", "seat-commands", ReserveSeat.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                (command, ctx) -> reserveCommands.add(ctx.message()));
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    private SagaOrchestrator orchestrator() {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition).build();
    }

    /** Alice's saga-1 sends its command, gets no reply in time, ends compensated and is purged; Bob's saga-1 starts. */
    private CompletableFuture<SagaResult<Booking>> purgedAndStartedAgain(SagaOrchestrator orchestrator) {
        orchestrator.start(definition, "saga-1", null, new Booking("alice"));
        transport.drainAll();
        scheduler.advance(TIMEOUT);
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        scheduler.advance(Duration.ofSeconds(1));
        assertEquals(1, store.deleteFinishedBefore(scheduler.now()), "retention purges alice's saga");
        CompletableFuture<SagaResult<Booking>> result = orchestrator.start(definition, "saga-1", null, new Booking("bob"))
                .toCompletableFuture();
        transport.drainAll();
        assertEquals(2, reserveCommands.size());
        return result;
    }

    private void answer(Message command, Object reply) {
        SagaMessages.reply(bus, command, reply);
        transport.drainAll();
    }

    private void assertWaiting() {
        SagaInstance bob = store.find("saga-1").orElseThrow();
        assertEquals(StepStatus.WAITING, bob.step("reserve-seat").orElseThrow().status(),
                "the purged saga's reply was taken by the saga started under its id: " + bob);
        assertEquals(List.of(), reserved);
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "an ignored reply is acknowledged");
    }

    @Test
    void aLateReplyToThePurgedSagasCommandIsIgnoredByTheSagaStartedUnderItsIdWhichItsOwnReplyCompletes() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            CompletableFuture<SagaResult<Booking>> bob = purgedAndStartedAgain(orchestrator);

            answer(reserveCommands.get(0), new SeatReserved("alice")); // alice's reply, late

            assertFalse(bob.isDone());
            assertWaiting();

            answer(reserveCommands.get(1), new SeatReserved("bob"));
            assertEquals(SagaOutcome.COMPLETED, bob.join().outcome());
            assertEquals(List.of("bob"), reserved);
        }
    }

    @Test
    void aLateReplyToThePurgedSagasCommandDoesNotMakeANodeThatDoesNotDriveTheNewSagaTakeItOver() {
        SagaOrchestrator first = orchestrator();
        purgedAndStartedAgain(first);
        first.close(); // the process ends while bob's saga waits; the next one has not run recover() yet
        try (SagaOrchestrator second = orchestrator()) {
            SagaInstance waiting = store.find("saga-1").orElseThrow();

            answer(reserveCommands.get(0), new SeatReserved("alice"));

            assertEquals(waiting, store.find("saga-1").orElseThrow(), "the purged saga's reply was taken by a node"
                    + " that adopted the new saga for it");
            assertWaiting();
            assertEquals(List.of("saga-1"), second.recover().resumed());
            transport.drainAll();
            answer(reserveCommands.get(1), new SeatReserved("bob"));
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("bob"), reserved);
        }
    }

    @Test
    void aHandBuiltReplyThatNamesNoCommandIsTakenByTheSagaThatWaitsUnderItsId() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            CompletableFuture<SagaResult<Booking>> bob = purgedAndStartedAgain(orchestrator);

            // An older participant's reply, built by hand outside the command's handler: no causation id to tell by.
            bus.publish("saga-replies", "saga-1", new SeatReserved("someone"), Map.of(MessageHeaders.SAGA_ID, "saga-1",
                    SagaMessages.STEP, "reserve-seat", SagaMessages.ATTEMPT, "1"));
            transport.drainAll();

            assertEquals(SagaOutcome.COMPLETED, bob.join().outcome());
            assertEquals(List.of("someone"), reserved);
        }
    }

    @Test
    void theLibrarysReplyNamesTheCommandItAnswersAlsoWhenSentOutsideTheCommandsHandler() {
        try (SagaOrchestrator orchestrator = orchestrator()) {
            orchestrator.start(definition, "saga-1", null, new Booking("bob"));
            transport.drainAll();

            answer(reserveCommands.get(0), new SeatReserved("bob")); // from the test's thread, not the handler's
            Message reply = transport.messages("saga-replies").get(0);

            assertEquals(reserveCommands.get(0).id(), reply.causationId().orElseThrow());
            assertTrue(reply.causationId().orElseThrow().startsWith("saga-1/"));
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        }
    }
}
