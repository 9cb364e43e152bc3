package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.SagaException;
import io.streamsaga.spi.StoredKeys;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A saga id the caller passes (an operator call) or that came from a message (a saga started per event) is quoted
 * bounded ({@code StreamSagaException.quote}) by the refusals and failures that name it: a 10,000-character id went
 * whole into the exception, the logs and the saga's stored failure.
 */
class OperatorRefusalQuotingTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private static final String HUGE = "s-" + "x".repeat(10_000);
    /** The longest saga id a store keeps ({@link StoredKeys#MAX_SAGA_ID_LENGTH}): a saga with {@link #HUGE} never starts. */
    private static final String LONGEST = "s-" + "x".repeat(StoredKeys.MAX_SAGA_ID_LENGTH - 2);

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    private final SagaDefinition<Data> definition = SagaDefinition.builder("pay-saga", Data.class)
            .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
            .onReply(Charged.class, (d, reply) -> new Data(reply.chargeId()))
            .build();
    private final SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
            .register(definition).build();

    @AfterEach
    void close() {
        orchestrator.close();
        bus.close();
        transport.close();
    }

    private static void assertQuotedBounded(String text) {
        assertQuotedBounded(text, HUGE);
    }

    private static void assertQuotedBounded(String text, String id) {
        assertTrue(text.length() < 300 && text.contains("'s-xxx") && text.contains("(" + id.length() + " characters)"), text);
    }

    @Test
    void anUnknownSagaIdIsQuotedBoundedInTheRefusal() {
        assertQuotedBounded(assertThrows(SagaException.class, () -> orchestrator.result(HUGE)).getMessage());
        assertQuotedBounded(assertThrows(SagaException.class, () -> orchestrator.cancel(HUGE)).getMessage());
        assertEquals("saga 's-1' not found", assertThrows(SagaException.class, () -> orchestrator.result("s-1")).getMessage());
    }

    @Test
    void aCancelledSagasFailureAndAnIllegalOperatorCallQuoteItsIdBounded() {
        CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, LONGEST, null, new Data("d-1"))
                .toCompletableFuture();
        transport.drainAll(); // the command is sent; no participant replies, the saga waits

        assertQuotedBounded(assertThrows(SagaException.class, () -> orchestrator.retryCompensation(LONGEST)).getMessage(),
                LONGEST);
        orchestrator.cancel(LONGEST);
        transport.drainAll();

        SagaResult<Data> cancelled = result.join();
        assertEquals(SagaOutcome.COMPENSATED, cancelled.outcome());
        assertQuotedBounded(cancelled.failure().message(), LONGEST);
        assertQuotedBounded(assertThrows(SagaException.class, () -> orchestrator.cancel(LONGEST)).getMessage(), LONGEST);
        CompletionException refused = assertThrows(CompletionException.class, () -> orchestrator.start(definition, HUGE,
                null, new Data("d-2")).toCompletableFuture().join(), "a longer id no store keeps is refused at the start");
        assertInstanceOf(ConfigurationException.class, refused.getCause());
        assertQuotedBounded(refused.getCause().getMessage());
    }
}
