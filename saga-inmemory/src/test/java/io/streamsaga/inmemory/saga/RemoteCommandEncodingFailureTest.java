package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EncodingException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step's or remote compensation's command that the codec cannot encode (a map key holding a lone surrogate,
 * which JSON cannot read back in a name) is bad input of that step: its attempt fails with the codec's
 * {@link EncodingException} naming the payload type, which no retry policy retries, and the saga compensates (or, for
 * a compensation, needs attention); nothing is sent and nothing is left for recovery. Both ways a command leaves:
 * published by the engine on a transport of bytes, and handed to a store that stores outgoing messages.
 */
class RemoteCommandEncodingFailureTest {
    record Data(String id) {
    }

    /** Its key is a lone surrogate: Jackson writes the escape, which it refuses to read back in a field name. */
    record Reserve(Map<String, String> lines) {
        static Reserve unencodable() {
            return new Reserve(Map.of("\uD800", "1"));
        }
    }

    record Reserved(String id) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport bytes = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
            .serializePayloads(true).build();
    private final InMemoryTransport objects = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final List<EventBus> buses = new CopyOnWriteArrayList<>();
    /** Every command that reached the participant. */
    private final List<String> delivered = new CopyOnWriteArrayList<>();

    /** The remote step's command cannot be encoded: the step fails, the local step before it is compensated. */
    private final SagaDefinition<Data> badCommand = SagaDefinition.builder("bad-command", Data.class)
            .step("local").action((d, ctx) -> d).compensation((d, ctx) -> { })
            .step("reserve").command("stock", (d, ctx) -> Reserve.unencodable())
            .onReply(Reserved.class, (d, reply) -> d)
            .build();

    /** The last step fails, and the remote compensation's command cannot be encoded. */
    private final SagaDefinition<Data> badCompensation = SagaDefinition.builder("bad-compensation", Data.class)
            .step("reserve").action((d, ctx) -> d)
            .compensationCommand("stock", (d, ctx) -> Reserve.unencodable())
            .onCompensationReply(Reserved.class, (d, reply) -> { })
            .step("pay").action((d, ctx) -> {
                throw new IllegalStateException("declined");
            })
            .build();

    @AfterEach
    void tearDown() {
        buses.forEach(EventBus::close);
        bytes.close();
        objects.close();
    }

    private EventBus bus(InMemoryTransport transport) {
        EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(TypeRegistry.builder()
                .register("reserve", 1, Reserve.class).register("reserved", 1, Reserved.class).build()).build();
        buses.add(bus);
        bus.subscribe("stock-service", "stock", Reserve.class, (command, ctx) -> delivered.add(ctx.message().id()));
        return bus;
    }

    private SagaResult<Data> run(EventBus bus, SagaStore store, SagaDefinition<Data> definition, InMemoryTransport transport) {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).build()) {
            var result = orchestrator.start(definition, "s-1", null, new Data("1")).toCompletableFuture();
            transport.drainAll();
            assertTrue(result.isDone(), "the saga settled: " + store.find("s-1"));
            assertEquals(List.of(), orchestrator.recover().resumed(), "nothing left for recovery");
            return result.join();
        }
    }

    private static void assertEncodingFailure(Throwable error) {
        assertInstanceOf(EncodingException.class, error);
        assertTrue(error.getMessage().contains(Reserve.class.getName()), error.getMessage());
    }

    @Test
    void aRemoteStepsCommandTheBusCannotEncodeFailsTheStepAndTheSagaCompensates() {
        InMemorySagaStore store = new InMemorySagaStore();
        SagaResult<Data> result = run(bus(bytes), store, badCommand, bytes);

        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEncodingFailure(result.exception());
        assertEquals("reserve", result.failure().step());
        assertEquals(EncodingException.class.getName(), result.failure().errorClass());
        StepState reserve = store.find("s-1").orElseThrow().step("reserve").orElseThrow();
        assertEquals(StepStatus.FAILED, reserve.status());
        assertEquals(1, reserve.attempts(), "not retried: bad input");
        assertEquals(StepStatus.COMPENSATED, store.find("s-1").orElseThrow().step("local").orElseThrow().status());
        assertEquals(List.of(), delivered);
    }

    @Test
    void aRemoteStepsCommandAStoreWithAnOutboxCannotBeHandedFailsTheStepAndTheSagaCompensates() {
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        SagaResult<Data> result = run(bus(objects), store, badCommand, objects);

        assertEquals(SagaOutcome.COMPENSATED, result.outcome());
        assertEncodingFailure(result.exception());
        assertEquals(1, store.find("s-1").orElseThrow().step("reserve").orElseThrow().attempts(), "not retried: bad input");
        assertEquals(List.of(), store.all, "no command handed to the store");
        assertEquals(List.of(), delivered, "nor published");
    }

    @Test
    void aRemoteCompensationsCommandTheBusCannotEncodeFailsTheCompensationAndTheSagaNeedsAttention() {
        InMemorySagaStore store = new InMemorySagaStore();
        SagaResult<Data> result = run(bus(bytes), store, badCompensation, bytes);

        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals("reserve", result.compensationFailure().step());
        assertEquals(EncodingException.class.getName(), result.compensationFailure().errorClass());
        assertTrue(result.compensationFailure().message().contains(Reserve.class.getName()));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-1").orElseThrow().status());
        StepState reserve = store.find("s-1").orElseThrow().step("reserve").orElseThrow();
        assertEquals(StepStatus.COMPENSATION_FAILED, reserve.status());
        assertEquals(1, reserve.compensationAttempts(), "not retried: bad input");
        assertEquals(List.of(), delivered);
    }

    @Test
    void aRemoteCompensationsCommandAStoreWithAnOutboxCannotBeHandedFailsTheCompensationNotSentPastTheOutbox() {
        // It was published by the engine itself instead, bypassing the outbox: on a transport of objects the
        // participant got it, and the saga waited for its reply.
        TransactionalMessagesTest.RecordingStore store = new TransactionalMessagesTest.RecordingStore();
        SagaResult<Data> result = run(bus(objects), store, badCompensation, objects);

        assertEquals(List.of(), delivered, "the engine published the command itself");
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, result.outcome());
        assertEquals(EncodingException.class.getName(), result.compensationFailure().errorClass());
        assertTrue(result.compensationFailure().message().contains(Reserve.class.getName()));
        StepState reserve = store.find("s-1").orElseThrow().step("reserve").orElseThrow();
        assertEquals(StepStatus.COMPENSATION_FAILED, reserve.status());
        assertEquals(1, reserve.compensationAttempts(), "not retried: bad input");
        assertEquals(List.of(), store.all, "no command handed to the store");
    }
}
