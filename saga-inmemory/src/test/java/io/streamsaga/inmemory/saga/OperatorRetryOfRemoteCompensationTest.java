package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Participants deduplicate commands by message id (docs/durability.md: "must deduplicate by the message id or
 * the saga-idempotency-key header"; IdempotentConsumer keys by message id): the command of a compensation an
 * operator retries must not reuse the id of a command the participant already processed.
 */
class OperatorRetryOfRemoteCompensationTest {
    record Booking(String passenger) {
    }

    record ReserveSeat(String passenger) {
    }

    record SeatReserved(String seatId) {
    }

    record ReleaseSeat(String passenger) {
    }

    record SeatReleased(boolean released) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                    .register("seat-reserved", 1, SeatReserved.class).register("release-seat", 1, ReleaseSeat.class)
                    .register("seat-released", 1, SeatReleased.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final Set<String> processedIds = ConcurrentHashMap.newKeySet();
    private final List<String> releaseCommandIds = new CopyOnWriteArrayList<>();
    private volatile boolean refuses = true;

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aCompensationRetriedByTheOperatorIsSentUnderANewMessageId() {
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("airline", "seat-commands", ReserveSeat.class, earliest,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new SeatReserved("1A")));
        bus.subscribe("airline-releases", "seat-release-commands", ReleaseSeat.class, earliest, (command, ctx) -> {
            releaseCommandIds.add(ctx.message().id());
            if (!processedIds.add(ctx.message().id())) {
                return; // a duplicate: already processed (what IdempotentConsumer does)
            }
            SagaMessages.reply(bus, ctx.message(), new SeatReleased(!refuses));
        });
        SagaDefinition<Booking> definition = SagaDefinition.builder("seat-saga", Booking.class)
                .step("reserve-seat")
                .command("seat-commands", (b, ctx) -> new ReserveSeat(b.passenger()))
                .onReply(SeatReserved.class, (b, reply) -> b)
                .compensationCommand("seat-release-commands", (b, ctx) -> new ReleaseSeat(b.passenger()))
                .onCompensationReply(SeatReleased.class, (b, reply) -> {
                    if (!reply.released()) {
                        throw new IllegalStateException("release refused");
                    }
                })
                .compensationRetry(RetryPolicy.NONE)
                .timeout(Duration.ofMinutes(1))
                .step("charge").action((b, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Booking("bob"));
        transport.drainAll();
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());

        refuses = false; // the airline fixed its release desk
        orchestrator.retryCompensation("saga-1");
        transport.drainAll();

        assertEquals(2, releaseCommandIds.size());
        assertEquals(2, Set.copyOf(releaseCommandIds).size(), "the retried command reused an id: " + releaseCommandIds);
        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        orchestrator.close();
    }
}
