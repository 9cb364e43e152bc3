package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.codec.UnknownEventTypeException;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step's command goes on the wire under the type id the bus's {@code TypeRegistry} gives its class, so a
 * command class left out of the registry fails every send: the step fails with an {@link UnknownEventTypeException} and
 * the saga compensates, each time. A command built by an untyped factory ({@code command(topic, factory)}) is of a
 * class known only when the factory runs, so that is where it fails.
 */
class RemoteCommandOfAClassTheBusCannotEncodeTest {
    record Trip(String id) {
    }

    @EventType("reserve-seat")
    record ReserveSeat(String id) {
    }

    @EventType("seat-reserved")
    record SeatReserved(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    /** ReserveSeat left out: the adopter's slip. */
    private final TypeRegistry repliesOnly = TypeRegistry.builder().register(SeatReserved.class).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(repliesOnly).build();
    private final InMemorySagaStore store = new InMemorySagaStore();

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private SagaOrchestrator.Builder orchestrator() {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler);
    }

    @Test
    void anUntypedCommandOfAClassTheRegistryLacksFailsItsStepAtEachSendAndTheSagaCompensates() {
        SagaDefinition<Trip> saga = SagaDefinition.builder("trip", Trip.class)
                .step("reserve").command("seats", (d, ctx) -> new ReserveSeat(d.id()))
                .onReply(SeatReserved.class, (d, reply) -> d)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator().register(saga).build()) {
            SagaResult<Trip> result = orchestrator.start(saga, "s-1", null, new Trip("1")).toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPENSATED, result.outcome());
            assertEquals("reserve", result.failure().step());
            assertEquals(UnknownEventTypeException.class.getName(), result.failure().errorClass());
            assertTrue(result.failure().message().contains("TypeRegistry.builder().register(ReserveSeat.class)"),
                    result.failure().message());
            assertFalse(transport.topics().contains("seats"), "no command sent");
        }
    }
}
