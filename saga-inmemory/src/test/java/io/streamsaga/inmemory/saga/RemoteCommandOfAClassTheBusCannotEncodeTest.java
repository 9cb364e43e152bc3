package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.codec.UnknownEventTypeException;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step's command goes on the wire under the type id the bus's {@code TypeRegistry} gives its class, so a
 * command class left out of the registry fails every send: the step fails with an {@link UnknownEventTypeException} and
 * the saga compensates, each time. A command built by an untyped factory ({@code command(topic, factory)}) is of a
 * class known only when the factory runs, so that is where it fails. A step that declares its command class
 * ({@code command(topic, type, factory)}, {@code compensationCommand(topic, type, factory)}) has it checked where the
 * definition meets the bus, at {@code build()} for a registered definition and at the first {@code start} of another,
 * naming the saga, the step, the class and the call that registers it, before anything is stored or sent.
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

    @EventType("release-seat")
    record ReleaseSeat(String id) {
    }

    /** A command class open to subclasses, unlike a record. */
    @EventType("hold-seat")
    static class HoldSeat {
    }

    /** Not registered: the registry gives a type id to a class, never to its subclasses. */
    static final class HoldSeatForAWeek extends HoldSeat {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    /** ReserveSeat and ReleaseSeat left out: the adopter's slip. */
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

    private static SagaDefinition<Trip> reserving(Class<?> commandClass) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("reserve").command("seats", commandClass, (d, ctx) -> new ReserveSeat(d.id()))
                .onReply(SeatReserved.class, (d, reply) -> d)
                .build();
    }

    @Test
    void aDeclaredCommandClassTheRegistryLacksIsRefusedAtBuildNamingTheSagaTheStepAndTheCallThatRegistersIt() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> orchestrator().register(reserving(ReserveSeat.class)).build());

        assertTrue(e.getMessage().startsWith("saga 'trip': step 'reserve' sends commands of class "
                + ReserveSeat.class.getName() + ", which the bus's TypeRegistry gives no type id, so every send would fail"
                + " the step: event class " + ReserveSeat.class.getName() + " (@EventType(\"reserve-seat\"), version 1) is"
                + " not registered"), e.getMessage());
        assertTrue(e.getMessage().contains("TypeRegistry.builder().register(ReserveSeat.class)"), e.getMessage());
    }

    @Test
    void aDeclaredCompensationCommandClassTheRegistryLacksIsRefusedAtBuild() {
        SagaDefinition<Trip> saga = SagaDefinition.builder("return-trip", Trip.class)
                .step("reserve").action((d, ctx) -> d)
                .compensationCommand("seats", ReleaseSeat.class, (d, ctx) -> new ReleaseSeat(d.id()))
                .onCompensationReply(SeatReserved.class, (d, reply) -> { })
                .build();

        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> orchestrator().register(saga).build());

        assertTrue(e.getMessage().startsWith("saga 'return-trip': the compensation of step 'reserve' sends commands of"
                + " class " + ReleaseSeat.class.getName() + ", which the bus's TypeRegistry gives no type id, so every send"
                + " would fail the compensation: event class " + ReleaseSeat.class.getName()), e.getMessage());
    }

    @Test
    void aDefinitionStartedUnregisteredWithADeclaredCommandClassTheRegistryLacksIsRefusedAtItsFirstStartStoringNothing() {
        try (SagaOrchestrator orchestrator = orchestrator().build()) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> orchestrator.start(reserving(ReserveSeat.class), "s-1", null, new Trip("1")));

            assertTrue(e.getMessage().startsWith("saga 'trip': step 'reserve' sends commands of class "
                    + ReserveSeat.class.getName()), e.getMessage());
            assertEquals(Optional.empty(), store.find("s-1"), "nothing stored");
            assertFalse(transport.topics().contains("seats"), "no command sent");
        }
    }

    @Test
    void aCommandOfAnotherClassThanTheDeclaredOneFailsItsStepNamingBoth() {
        EventBus registered = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(ReserveSeat.class).register(SeatReserved.class).register(ReleaseSeat.class).build()).build();
        SagaDefinition<Trip> saga = SagaDefinition.builder("trip", Trip.class)
                .step("reserve").command("seats", ReleaseSeat.class, (d, ctx) -> new ReserveSeat(d.id()))
                .onReply(SeatReserved.class, (d, reply) -> d)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(registered).scheduler(scheduler)
                .register(saga).build()) {
            SagaResult<Trip> result = orchestrator.start(saga, "s-1", null, new Trip("1")).toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPENSATED, result.outcome());
            assertEquals(ConfigurationException.class.getName(), result.failure().errorClass());
            assertEquals("saga 'trip': the command of step 'reserve' is declared of class " + ReleaseSeat.class.getName()
                    + " but its factory built a " + ReserveSeat.class.getName(), result.failure().message());
            assertFalse(transport.topics().contains("seats"), "no command sent");
        } finally {
            registered.close();
        }
    }

    @Test
    void aCommandOfASubclassOfTheDeclaredClassFailsItsStepNamingBothAsTheRegistryGivesTheSubclassNoTypeId() {
        EventBus registered = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(HoldSeat.class).register(SeatReserved.class).build()).build();
        SagaDefinition<Trip> saga = SagaDefinition.builder("trip", Trip.class)
                .step("hold").command("seats", HoldSeat.class, (d, ctx) -> new HoldSeatForAWeek())
                .onReply(SeatReserved.class, (d, reply) -> d)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(registered).scheduler(scheduler)
                .register(saga).build()) {
            SagaResult<Trip> result = orchestrator.start(saga, "s-1", null, new Trip("1")).toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPENSATED, result.outcome());
            assertEquals(ConfigurationException.class.getName(), result.failure().errorClass());
            assertEquals("saga 'trip': the command of step 'hold' is declared of class " + HoldSeat.class.getName()
                    + " but its factory built a " + HoldSeatForAWeek.class.getName(), result.failure().message());
            assertFalse(transport.topics().contains("seats"), "no command sent");
        } finally {
            registered.close();
        }
    }

    @Test
    void aCompensationCommandOfAnotherClassThanTheDeclaredOneFailsTheCompensationOnceWithoutARetryAndTheSagaNeedsAttention() {
        EventBus registered = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(ReserveSeat.class).register(SeatReserved.class).register(ReleaseSeat.class).build()).build();
        SagaDefinition<Trip> saga = SagaDefinition.builder("trip", Trip.class)
                .step("reserve").action((d, ctx) -> d)
                .compensationCommand("seats", ReleaseSeat.class, (d, ctx) -> new ReserveSeat(d.id()))
                .onCompensationReply(SeatReserved.class, (d, reply) -> { })
                .step("pay").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(registered).scheduler(scheduler)
                .register(saga).build()) {
            SagaResult<Trip> result = orchestrator.start(saga, "s-1", null, new Trip("1")).toCompletableFuture().join();

            assertTrue(result.needsAttention(), result.outcome().toString());
            assertEquals("reserve", result.compensationFailure().step());
            assertEquals(ConfigurationException.class.getName(), result.compensationFailure().errorClass());
            assertEquals("saga 'trip': the compensation command of step 'reserve' is declared of class "
                    + ReleaseSeat.class.getName() + " but its factory built a " + ReserveSeat.class.getName(),
                    result.compensationFailure().message());
            assertEquals(1, store.find("s-1").orElseThrow().step("reserve").orElseThrow().compensationAttempts(),
                    "not retried: a ConfigurationException is not retriable");
            assertFalse(transport.topics().contains("seats"), "no command sent");
        } finally {
            registered.close();
        }
    }

    @Test
    void aDeclaredCommandClassTheRegistryHoldsIsSentUnderItsTypeId() {
        EventBus registered = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(ReserveSeat.class).register(SeatReserved.class).build()).build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(registered).scheduler(scheduler)
                .register(reserving(ReserveSeat.class)).build()) {
            orchestrator.start(reserving(ReserveSeat.class), "s-1", null, new Trip("1"));

            List<Message> sent = transport.messages("seats");
            assertEquals(1, sent.size());
            assertEquals("reserve-seat", sent.get(0).type());
            assertEquals(SagaStatus.RUNNING, store.find("s-1").orElseThrow().status());
        } finally {
            registered.close();
        }
    }
}
