package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.time.Scheduler;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An airline's seat desk, the participant of a seat saga's remote step (reserve-seat, on {@code seat-commands}) and
 * remote compensation (release-seat, on {@code seat-release-commands}): a bus on a manually drained in-memory transport
 * over the test's scheduler, which holds each command the desk gets for the test to answer when it says.
 */
final class SeatDeskFixture implements AutoCloseable {
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

    final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    final EventBus bus;
    final List<Message> reserveCommands = new CopyOnWriteArrayList<>();
    final List<Message> releaseCommands = new CopyOnWriteArrayList<>();

    SeatDeskFixture(Scheduler scheduler) {
        bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("reserve-seat", 1, ReserveSeat.class)
                        .register("seat-reserved", 1, SeatReserved.class).register("release-seat", 1, ReleaseSeat.class)
                        .register("seat-released", 1, SeatReleased.class).build())
                .build();
        SubscriptionOptions earliest = SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST);
        bus.subscribe("airline", "seat-commands", ReserveSeat.class, earliest,
                (command, ctx) -> reserveCommands.add(ctx.message()));
        bus.subscribe("airline-releases", "seat-release-commands", ReleaseSeat.class, earliest,
                (command, ctx) -> releaseCommands.add(ctx.message()));
    }

    /** The desk answers {@code command} with {@code reply} now, and the orchestrator gets it. */
    void answer(Message command, Object reply) {
        SagaMessages.reply(bus, command, reply);
        transport.drainAll();
    }

    /** The replies the orchestrator dead-lettered. */
    List<Message> deadLetteredReplies() {
        return transport.messages("saga-replies.DLT");
    }

    @Override
    public void close() {
        bus.close();
        transport.close();
    }
}
