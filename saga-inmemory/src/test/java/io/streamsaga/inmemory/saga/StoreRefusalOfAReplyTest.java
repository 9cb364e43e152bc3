package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A remote step's reply whose outcome the store refuses to write (its handler's data holds a receipt id as a map key
 * with a lone surrogate, which a durable store cannot write as JSON that reads back), end to end on the in-memory bus:
 * the reply is not lost silently; the saga needs attention, as for any write of a running saga the store refuses
 * (StoreRefusalAfterTheStartTest), its failure naming the step, and the operator's retry, once the participant is fixed,
 * sends the step's command as a new attempt, which a participant that answers each command once answers, and the saga
 * completes.
 */
class StoreRefusalOfAReplyTest {
    record Order(String id, Map<String, String> receipts) {
    }

    record Charge(String orderId) {
    }

    record Charged(String receiptId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final InMemorySagaStore store = InMemorySagaStore.serializingJson(JsonEventCodec.defaultMapper());

    @AfterEach
    void close() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    @Test
    void aReplyWhoseOutcomeTheStoreRefusesLeavesTheSagaNeedingAttentionAndTheRetrySendsANewAttemptThatCompletesIt() {
        // The payment service answers each command once (by its id): a command sent again is a duplicate it ignores.
        Set<String> answered = ConcurrentHashMap.newKeySet();
        List<String> commands = new CopyOnWriteArrayList<>();
        boolean[] fixed = {false};
        bus.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> {
                    commands.add(ctx.message().id());
                    if (answered.add(ctx.message().id())) {
                        SagaMessages.reply(bus, ctx.message(), new Charged(fixed[0] ? "r-1" : "r-\uD800"));
                    }
                });
        SagaDefinition<Order> definition = charge().build();
        List<SagaInstance> failed = new CopyOnWriteArrayList<>();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(definition).listener(new SagaListener() {
                    @Override
                    public void onFailed(SagaInstance instance) {
                        failed.add(instance);
                    }
                }).build();

        CompletableFuture<SagaResult<Order>> result = orchestrator.start(definition, "saga-1", null,
                new Order("o-1", Map.of())).toCompletableFuture();
        transport.drainAll();

        assertTrue(result.isDone(), "the saga's result waits for a reply that was consumed");
        SagaResult<Order> outcome = result.join();
        assertEquals(SagaOutcome.FAILED_NEEDS_ATTENTION, outcome.outcome(), outcome.toString());
        assertEquals("charge", outcome.failure().step());
        assertEquals(ConfigurationException.class.getName(), outcome.failure().errorClass());
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
        assertEquals(1, failed.size(), "the listeners hear that the saga needs attention");
        assertTrue(store.history("saga-1").stream().anyMatch(t -> t.type() == TransitionType.SAGA_NEEDS_ATTENTION
                && "charge".equals(t.step())));
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "the reply was taken by the saga, not dead-lettered");
        assertEquals(List.of(), orchestrator.recover().resumed());

        fixed[0] = true;
        CompletableFuture<SagaResult<Object>> retried = orchestrator.retryCompensation("saga-1").toCompletableFuture();
        transport.drainAll();

        assertTrue(retried.isDone(), "the retry re-sent the answered command, which the participant ignores as a"
                + " duplicate: " + commands);
        assertEquals(SagaOutcome.COMPLETED, retried.join().outcome());
        Instant started = store.find("saga-1").orElseThrow().createdAt();
        assertEquals(List.of(SagaMessages.commandId("saga-1", started, "charge", false, 1),
                SagaMessages.commandId("saga-1", started, "charge", false, 2)), commands);
        assertEquals(new Order("o-1", Map.of("r-1", "paid")), JsonEventCodec.defaultMapper()
                .convertValue(store.find("saga-1").orElseThrow().data(), Order.class));
        orchestrator.close();
    }

    /**
     * A bus over the test's transport that delivers a record again twice when its handler fails retriably, with a payment
     * service on it answering each charge with receipt {@code receiptId}.
     */
    private EventBus retryingBusCharging(String receiptId) {
        EventBus retrying = EventBus.builder(transport).scheduler(scheduler)
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
                .build();
        retrying.subscribe("payment-service", "charge-commands", Charge.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                (command, ctx) -> SagaMessages.reply(retrying, ctx.message(), new Charged(receiptId)));
        return retrying;
    }

    /** The order saga's remote step charge, whose reply's receipt id is kept in the order's receipts. */
    private static SagaDefinition.StepBuilder<Order> charge() {
        return SagaDefinition.builder("order-saga", Order.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Order(d.id(), Map.of(reply.receiptId(), "paid")));
    }

    /**
     * Starts saga-1 of {@code definition} over the test's store refusing the write marking it as needing attention as
     * well, a payment service answering with receipt {@code receiptId} on a bus that delivers again what its handler
     * failed retriably; once all is delivered, checks that the saga's result failed with a non-retriable SagaException
     * (the store refused a write and then the needs-attention write) and closes what it built.
     */
    private void startedOnAStoreRefusingTheNeedsAttentionWrite(SagaDefinition<Order> definition, String receiptId) {
        EventBus retrying = retryingBusCharging(receiptId);
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(refusingTheNeedsAttentionWrite()).bus(retrying)
                .scheduler(scheduler).register(definition).build();

        CompletableFuture<SagaResult<Order>> result = orchestrator.start(definition, "saga-1", null,
                new Order("o-1", Map.of())).toCompletableFuture();
        transport.drainAll();

        SagaException failed = assertInstanceOf(SagaException.class,
                assertThrows(CompletionException.class, result::join).getCause());
        assertFalse(failed.isRetriable(), failed.toString());
        orchestrator.close();
        retrying.close();
    }

    /** The test's store, refusing the write marking a saga as needing attention as well. */
    private ForwardingSagaStore refusingTheNeedsAttentionWrite() {
        return new ForwardingSagaStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_NEEDS_ATTENTION) {
                    throw new ConfigurationException("the store cannot keep this saga's failure either");
                }
                super.update(updated, transition);
            }
        };
    }

    @Test
    void aReplyWhoseOutcomeAndThenTheNeedsAttentionWriteTheStoreRefusesIsDeadLetteredAtOnceNamingTheRefusal() {
        startedOnAStoreRefusingTheNeedsAttentionWrite(charge().build(), "r-\uD800");

        List<Message> deadLetters = transport.messages("saga-replies.DLT");
        assertEquals(1, deadLetters.size());
        Message deadLetter = deadLetters.get(0);
        assertEquals("1", deadLetter.header(MessageHeaders.DLT_ATTEMPTS).orElseThrow(), "a reply that meets the same"
                + " refusals at every delivery was delivered again: " + deadLetter.headers());
        String reason = deadLetter.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow();
        assertTrue(reason.contains("cannot be written as JSON") && reason.contains("marking it as needing attention"),
                "the dead letter hides the store's refusals: " + reason);
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status(), "stored as before the refused write");
    }

    @Test
    void aReplyWhoseOutcomeIsStoredBeforeALaterWriteAndTheNeedsAttentionWriteAreRefusedIsNotDeadLettered() {
        // The reply's outcome is stored; the next step's result, which the store refuses, is not the reply's.
        startedOnAStoreRefusingTheNeedsAttentionWrite(charge()
                .step("ship").action((d, ctx) -> new Order(d.id(), Map.of("s-\uD800", "shipped")))
                .build(), "r-1");

        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(StepStatus.SUCCEEDED, stored.step("charge").orElseThrow().status(), "the reply's outcome is stored");
        assertEquals(List.of(), transport.messages("saga-replies.DLT"), "a reply the saga took, its outcome stored, was"
                + " dead-lettered as not handled for a later write's refusals");
    }
}
