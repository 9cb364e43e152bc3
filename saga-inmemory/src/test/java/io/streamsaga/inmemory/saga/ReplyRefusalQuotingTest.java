package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reply the orchestrator refuses is dead-lettered with the refusal in {@code dlt-error-message}: the reply's
 * message id and saga id come from the message, so they are quoted bounded ({@code StreamSagaException.quote}).
 */
class ReplyRefusalQuotingTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void aReplyForAnUnknownSagaIsDeadLetteredQuotingItsIdsBounded() {
        SagaDefinition<Data> definition = SagaDefinition.builder("pay-saga", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId()))
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .register(definition).build();
        String huge = "x".repeat(10_000);
        bus.publish(Message.builder("saga-replies").id("r-" + huge).type("charged").payload(new Charged("c-1"))
                .header(MessageHeaders.SAGA_ID, "s-" + huge).header(SagaMessages.STEP, "charge").build())
                .toCompletableFuture().join();
        transport.drainAll();

        List<Message> dead = transport.messages("saga-replies.DLT");
        assertEquals(1, dead.size());
        String error = dead.get(0).header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow();
        assertTrue(error.length() < 400, error);
        assertTrue(error.contains("'r-xxx") && error.contains("'s-xxx") && error.contains("(10002 characters)"), error);
        orchestrator.close();
    }
}
