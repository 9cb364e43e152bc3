package io.streamsaga.inmemory.saga;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Optional;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step decodes its reply to the class of its {@code onReply}, so a class the bus's codec cannot decode to (a
 * record left out of the {@code TypeRegistry}) failed every reply: the step failed and the saga compensated, each time,
 * while the definition was taken without a word, where the bus refuses a handler of such a class. The orchestrator now
 * refuses such a definition where it meets the bus, at {@code build()} for a registered one and at the first
 * {@code start} of one that was not, naming the saga, the step, the class and the call that registers it, before
 * anything is stored or subscribed; so does a remote compensation's reply class. Replies read as a {@code Message}, a
 * JSON tree, a registered class or a class the bus's own codec says it decodes to are taken as before.
 */
class RemoteReplyOfAClassTheBusCannotDecodeToTest {
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

    @EventType("seat-released")
    record SeatReleased(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    /** SeatReserved and SeatReleased left out: the adopter's slip. */
    private final TypeRegistry commandsOnly = TypeRegistry.builder()
            .register(ReserveSeat.class).register(ReleaseSeat.class).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(commandsOnly).build();
    private final InMemorySagaStore store = new InMemorySagaStore();

    @BeforeEach
    void replyTopicExists() {
        // A subscription shows in consumerGroups once its topic exists; nothing here drains the record.
        transport.send(Message.builder("saga-replies").type("seat-reserved").build());
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private static SagaDefinition<Trip> reserving(Class<?> replyClass) {
        return SagaDefinition.builder("trip", Trip.class)
                .step("reserve").command("seats", (d, ctx) -> new ReserveSeat(d.id()))
                .onReply(replyClass, (d, reply) -> d)
                .build();
    }

    private static SagaDefinition<Trip> releasing(Class<?> replyClass) {
        return SagaDefinition.builder("return-trip", Trip.class)
                .step("reserve").action((d, ctx) -> d)
                .compensationCommand("seats", (d, ctx) -> new ReleaseSeat(d.id()))
                .onCompensationReply(replyClass, (d, reply) -> { })
                .build();
    }

    private SagaOrchestrator.Builder orchestrator() {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler);
    }

    @Test
    void aDefinitionWhoseReplyClassTheBusCannotDecodeToIsRefusedAtBuildNamingTheSagaTheStepAndTheCallThatRegistersIt() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> orchestrator().register(reserving(SeatReserved.class)).build());

        assertTrue(e.getMessage().startsWith("saga 'trip': step 'reserve' waits for a reply of class "
                + SeatReserved.class.getName() + ", which the bus's codec cannot decode to, so every reply would fail the"
                + " step: event class " + SeatReserved.class.getName() + " (@EventType(\"seat-reserved\"), version 1) is"
                + " not registered"), e.getMessage());
        assertTrue(e.getMessage().contains("TypeRegistry.builder().register(SeatReserved.class)"), e.getMessage());
        assertEquals(Set.of(), transport.consumerGroups("saga-replies"), "the replies are not subscribed");
    }

    @Test
    void aDefinitionWhoseCompensationReplyClassTheBusCannotDecodeToIsRefusedAtBuild() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> orchestrator().register(releasing(SeatReleased.class)).build());

        assertTrue(e.getMessage().startsWith("saga 'return-trip': the compensation of step 'reserve' waits for a reply of"
                + " class " + SeatReleased.class.getName() + ", which the bus's codec cannot decode to, so every reply"
                + " would fail the compensation: event class " + SeatReleased.class.getName()), e.getMessage());
        assertTrue(e.getMessage().contains("TypeRegistry.builder().register(SeatReleased.class)"), e.getMessage());
        assertEquals(Set.of(), transport.consumerGroups("saga-replies"), "the replies are not subscribed");
    }

    @Test
    void aDefinitionStartedUnregisteredWhoseReplyClassTheBusCannotDecodeToIsRefusedAtItsFirstStartStoringNothing() {
        try (SagaOrchestrator orchestrator = orchestrator().build()) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> orchestrator.start(reserving(SeatReserved.class), "s-1", null, new Trip("1")));

            assertTrue(e.getMessage().startsWith("saga 'trip': step 'reserve' waits for a reply of class "
                    + SeatReserved.class.getName() + ", which the bus's codec cannot decode to"), e.getMessage());
            assertEquals(Optional.empty(), store.find("s-1"), "nothing stored");
            assertEquals(Set.of(), transport.consumerGroups("saga-replies"), "the replies are not subscribed");
            assertEquals(Set.of("saga-replies"), transport.topics(), "no command sent");
        }
    }

    /** An application's codec that binds one reply class it has not registered, and says so. */
    static final class LenientCodec implements EventCodec {
        private final JsonEventCodec json;

        LenientCodec(TypeRegistry types) {
            this.json = new JsonEventCodec(types);
        }

        @Override
        public TypeRegistry types() {
            return json.types();
        }

        @Override
        public byte[] encode(Object payload) {
            return json.encode(payload);
        }

        @Override
        public JsonNode toTree(Object payload) {
            return json.toTree(payload);
        }

        @Override
        public <T> T decode(Message message, Class<T> target) {
            return target == SeatReserved.class ? target.cast(new SeatReserved(message.key())) : json.decode(message, target);
        }

        @Override
        public boolean canDecodeTo(Class<?> target) {
            return target == SeatReserved.class || EventCodec.super.canDecodeTo(target);
        }
    }

    @Test
    void repliesReadAsMessagesTreesRegisteredClassesOrClassesTheBussOwnCodecDecodesToAreTakenAsBefore() {
        EventBus registered = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register(ReserveSeat.class).register(SeatReserved.class).register(ReleaseSeat.class)
                .register(SeatReleased.class).build()).build();
        EventBus lenient = EventBus.builder(transport).scheduler(scheduler).codec(new LenientCodec(commandsOnly)).build();
        try (SagaOrchestrator messages = orchestrator().register(reserving(Message.class)).build();
             SagaOrchestrator trees = orchestrator().group("trees").register(releasing(JsonNode.class)).build();
             SagaOrchestrator classes = SagaOrchestrator.builder().store(store).bus(registered).scheduler(scheduler)
                     .group("classes").register(reserving(SeatReserved.class)).register(releasing(SeatReleased.class)).build();
             SagaOrchestrator own = SagaOrchestrator.builder().store(store).bus(lenient).scheduler(scheduler)
                     .group("own").build()) {
            own.start(reserving(SeatReserved.class), "s-own", null, new Trip("1"));
            messages.start(reserving(Message.class), "s-message", null, new Trip("2"));

            assertEquals(Set.of("saga-orchestrator", "trees", "classes", "own"), transport.consumerGroups("saga-replies"));
            assertTrue(store.find("s-own").isPresent() && store.find("s-message").isPresent(), "both started");
        } finally {
            registered.close();
            lenient.close();
        }
    }
}
