package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.claimcheck.ClaimCheckException;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.Reprocessor;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClaimCheckTest {
    record LargeOrder(String orderId, String items) {
    }

    private static final int THRESHOLD = 1024;
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryPayloadStore store = new InMemoryPayloadStore();
    private InMemoryTransport transport;
    private ClaimCheckInterceptor claimCheck;
    private EventBus bus;

    private void start(boolean serializePayloads) {
        transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).serializePayloads(serializePayloads).build();
        claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).threshold(THRESHOLD)
                .expiry(Duration.ofDays(1)).sweepInterval(Duration.ofHours(1)).build();
        bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("large-order", 1, LargeOrder.class).build())
                .scheduler(scheduler)
                .interceptor(claimCheck)
                .build();
    }

    @AfterEach
    void close() {
        bus.close();
        claimCheck.close();
        transport.close();
    }

    private static LargeOrder large(String id) {
        return new LargeOrder(id, "x".repeat(20_000));
    }

    @ParameterizedTest(name = "serializePayloads={0}")
    @ValueSource(booleans = {false, true})
    void largePayloadSurvivesTheRoundTripAndIsDeletedOnceEveryGroupAcknowledged(boolean serializePayloads) {
        start(serializePayloads);
        List<LargeOrder> billing = new CopyOnWriteArrayList<>();
        List<LargeOrder> shipping = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> billing.add(e));
        bus.subscribe("shipping", "large-order", LargeOrder.class, (e, ctx) -> shipping.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();

        Message onTheWire = transport.messages("large-order").get(0);
        PayloadReference reference = PayloadReference.fromHeaders(onTheWire.headers()).orElseThrow();
        assertTrue(reference.size() > THRESHOLD);
        assertTrue(((byte[]) onTheWire.payload()).length < 300, "only the reference travels");
        assertEquals(1, store.size());

        transport.drainAll();
        assertEquals(List.of(large("o-1")), billing);
        assertEquals(List.of(large("o-1")), shipping);
        assertEquals(0, store.size(), "deleted after both groups acknowledged");
        assertEquals(0, claimCheck.pendingMessages());
    }

    @Test
    void theReferenceBodyIsJsonThatReadsBackTheContentTypeWhateverItHolds() throws Exception {
        // The body, for readers in other languages, was built by concatenation with only '"' taken out of the
        // content type: a backslash or a control character in that header (it comes from the publisher) made it
        // invalid JSON, and a quoted parameter lost its quotes.
        start(false);
        String contentType = "application/json; profile=\"urn:a\\b\"; note=\u0001\n";
        Message message = Message.builder("large-order").key("o-1").type("large-order").payload(large("o-1"))
                .header(MessageHeaders.CONTENT_TYPE, contentType).build();

        Message reference = claimCheck.beforePublish(message, bus.codec());

        com.fasterxml.jackson.databind.JsonNode body = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree((byte[]) reference.payload());
        assertEquals(contentType, body.path("claimCheck").path("contentType").asText());
        assertEquals(PayloadReference.fromHeaders(reference.headers()).orElseThrow().id(),
                body.path("claimCheck").path("id").asText());
    }

    @Test
    void smallPayloadTravelsInline() {
        start(false);
        bus.publish("large-order", "o-1", new LargeOrder("o-1", "few")).toCompletableFuture().join();
        assertFalse(transport.messages("large-order").get(0).headers().containsKey(PayloadReference.ID_HEADER));
        assertEquals(0, store.size());
    }

    @Test
    void identicalPayloadsAreStoredOnceAndDeletedAfterTheLastMessage() {
        start(false);
        List<String> seen = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> seen.add(ctx.message().id()));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        assertEquals(1, store.size());
        transport.drainAll();
        assertEquals(2, seen.size());
        assertEquals(0, store.size());
    }

    @Test
    void missingPayloadIsDeadLetteredWithAClearError() {
        start(false);
        List<LargeOrder> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> handled.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        store.deleteStoredBefore(scheduler.now().plusSeconds(1)); // lost behind our back
        transport.drainAll();

        assertTrue(handled.isEmpty());
        Message dead = transport.messages("large-order.DLT").get(0);
        assertEquals(ClaimCheckException.class.getName(), dead.header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertTrue(dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow().contains("missing"));
        assertEquals("rejected-on-receive", dead.header(MessageHeaders.DLT_REASON).orElseThrow());
    }

    /** The order id when the handler got the full payload, so a failed assertion does not print 20 KB. */
    private static String resolved(LargeOrder order) {
        return order.equals(large(order.orderId())) ? order.orderId() : "truncated " + order.orderId();
    }

    @Test
    void aSecondRecordOfTheSameMessageHoldsThePayloadUntilItIsAcknowledgedToo() {
        // each record holds the payload (docs/patterns.md, claim check): an application's publish retry that
        // did reach the broker twice is two records, and the first one's acknowledgements must not delete the
        // payload the second still references
        start(false);
        List<String> billed = new CopyOnWriteArrayList<>();
        List<String> shipped = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> billed.add(resolved(e)));
        bus.subscribe("shipping", "large-order", LargeOrder.class, (e, ctx) -> shipped.add(resolved(e)));
        Message message = Message.builder("large-order").key("o-1").type("large-order").version(1)
                .payload(large("o-1")).build();
        bus.publish(message).toCompletableFuture().join();
        bus.publish(message).toCompletableFuture().join(); // the retry of a publish that timed out but had landed
        assertEquals(1, store.size(), "one payload, held by two records");
        transport.drainAll();

        assertEquals(List.of("o-1", "o-1"), billed, "the duplicate is delivered with its payload, not dead-lettered");
        assertEquals(List.of("o-1", "o-1"), shipped);
        assertTrue(transport.messages("large-order.DLT").isEmpty());
        assertEquals(0, store.size(), "released once every group acknowledged both records");
        assertEquals(0, claimCheck.pendingMessages());
    }

    @Test
    void corruptPayloadIsDeadLettered() {
        start(false);
        List<LargeOrder> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> handled.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        String id = transport.messages("large-order").get(0).headers().get(PayloadReference.ID_HEADER);
        byte[] tampered = store.get(id).orElseThrow();
        tampered[10] ^= 1;
        store.overwrite(id, tampered);
        transport.drainAll();

        assertTrue(handled.isEmpty());
        Message dead = transport.messages("large-order.DLT").get(0);
        assertTrue(dead.header(MessageHeaders.DLT_ERROR_MESSAGE).orElseThrow().contains("corrupt"));
    }

    @Test
    void deadLetteredMessageKeepsItsPayloadForTheDeadLetterUntilTheExpiry() {
        start(false);
        bus.subscribe("billing", "large-order", LargeOrder.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.NONE), (e, ctx) -> {
                    throw new IllegalStateException("billing down");
                });
        List<LargeOrder> inspected = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "large-order.DLT", LargeOrder.class, (e, ctx) -> inspected.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();

        assertEquals(List.of(large("o-1")), inspected, "the dead letter resolves to the full payload");
        assertEquals(1, store.size());
        scheduler.advance(Duration.ofDays(1).plusHours(1));
        assertEquals(0, store.size(), "the expiry sweep deleted it");
    }

    @Test
    void withoutKeepDeadLetteredADeadLetterCountsAsDoneAndThePayloadGoesAtOnce() {
        start(false);
        claimCheck.close();
        claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).threshold(THRESHOLD)
                .keepDeadLettered(false).build();
        bus.close();
        bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("large-order", 1, LargeOrder.class).build())
                .scheduler(scheduler).interceptor(claimCheck).build();
        bus.subscribe("billing", "large-order", LargeOrder.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.NONE), (e, ctx) -> {
                    throw new IllegalStateException("billing down");
                });
        List<LargeOrder> shipped = new CopyOnWriteArrayList<>();
        bus.subscribe("shipping", "large-order", LargeOrder.class, (e, ctx) -> shipped.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();

        assertEquals(1, shipped.size());
        assertEquals(1, transport.messages("large-order.DLT").size());
        assertEquals(0, store.size(), "billing dead-lettered, shipping acknowledged: every group is done");
    }

    @Test
    void payloadOfAGroupThatNeverAcknowledgesIsDeletedAtTheExpiry() {
        start(false);
        Subscription gone = bus.subscribe("reporting", "large-order", LargeOrder.class, (e, ctx) -> { });
        bus.publish("large-order", "o-0", new LargeOrder("o-0", "small")).toCompletableFuture().join();
        transport.drainAll();
        gone.close(); // the reporting group subscribed once and went away
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> { });
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(1, store.size(), "reporting never acknowledged");
        scheduler.advance(Duration.ofHours(23));
        assertEquals(1, store.size());
        scheduler.advance(Duration.ofHours(2));
        assertEquals(0, store.size());
        assertEquals(0, claimCheck.pendingMessages());
    }

    @Test
    void resolvedMessageForwardedAsIsIsClaimCheckedAgain() {
        start(true);
        bus.subscribe("forwarder", "large-order", Message.class, (m, ctx) -> {
            assertFalse(m.headers().containsKey(PayloadReference.ID_HEADER), "the handler sees a resolved message");
            bus.publish(m.toBuilder().id("forwarded-" + m.id()).build().withTopic("large-order-archive"))
                    .toCompletableFuture().join();
        });
        List<LargeOrder> archived = new CopyOnWriteArrayList<>();
        bus.subscribe("archive", "large-order-archive", LargeOrder.class, (e, ctx) -> archived.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();

        assertEquals(List.of(large("o-1")), archived);
        Message forwarded = transport.messages("large-order-archive").get(0);
        assertTrue(forwarded.headers().containsKey(PayloadReference.ID_HEADER), "checked again on the way out");
        assertEquals(0, store.size(), "both messages released their hold");
    }

    @Test
    void messageForwardedUnderItsOwnIdKeepsThePayloadUntilTheOtherTopicsGroupsAreDone() {
        start(true);
        bus.subscribe("forwarder", "large-order", Message.class, (m, ctx) ->
                bus.publish(m.withTopic("large-order-archive")).toCompletableFuture().join());
        List<LargeOrder> archived = new CopyOnWriteArrayList<>();
        bus.subscribe("archive", "large-order-archive", LargeOrder.class, (e, ctx) -> archived.add(e));
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        Message original = transport.messages("large-order").get(0);
        transport.drainAll();

        assertEquals(original.id(), transport.messages("large-order-archive").get(0).id(), "forwarded under the same id");
        assertTrue(transport.messages("large-order-archive.DLT").isEmpty(), "the archive resolved its payload");
        assertEquals(List.of(large("o-1")), archived);
        assertEquals(0, store.size(), "both messages released their hold");
        assertEquals(0, claimCheck.pendingMessages());
    }

    @Test
    void aReplayUnderANewGroupFindsThePayloadsWhenTheyAreKeptUntilTheExpiry() {
        // by default a payload goes once the groups subscribed at the time are done, so a Kappa replay under a
        // new group would find every released payload missing and dead-letter it; keepUntilExpiry keeps them
        start(false);
        claimCheck.close();
        claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).threshold(THRESHOLD)
                .expiry(Duration.ofDays(1)).keepUntilExpiry(true).build();
        bus.close();
        bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("large-order", 1, LargeOrder.class).build())
                .scheduler(scheduler).interceptor(claimCheck).build();
        bus.subscribe("billing", "large-order", LargeOrder.class, (e, ctx) -> { });
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();
        assertEquals(1, store.size(), "kept although every group is done");
        assertEquals(0, claimCheck.pendingMessages(), "nothing is tracked when nothing is released");

        List<String> replayed = new CopyOnWriteArrayList<>();
        Replay replay = Reprocessor.builder(bus).on("large-order", LargeOrder.class, (e, ctx) -> replayed.add(resolved(e)))
                .mode(Reprocessor.Mode.UNTIL_TARGET).build().start("rebuild");
        transport.drainAll();

        assertTrue(replay.caughtUp().toCompletableFuture().isDone());
        assertEquals(List.of("o-1"), replayed, "the replay sees the event, not a dead letter for a missing payload");
        assertTrue(transport.messages("large-order.DLT").isEmpty());
        scheduler.advance(Duration.ofDays(1).plusHours(1));
        assertEquals(0, store.size(), "the expiry deletes it");
    }

    @Test
    void resolvedMessageForwardedWithANewPayloadReleasesTheNewPayloadWhenDeadLettered() {
        // a handler forwards the resolved message with an enriched payload (toBuilder keeps its headers): the
        // first topic's claim-check-resolved-id must not travel on and name the old payload to release when
        // the forwarded record is dead-lettered, leaving the new one until the expiry
        start(true);
        claimCheck.close();
        claimCheck = ClaimCheckInterceptor.builder(store, transport).scheduler(scheduler).threshold(THRESHOLD)
                .keepDeadLettered(false).build();
        bus.close();
        bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("large-order", 1, LargeOrder.class).build())
                .scheduler(scheduler).interceptor(claimCheck).build();
        bus.subscribe("enricher", "large-order", Message.class, (m, ctx) ->
                bus.publish(m.toBuilder().payload(bus.codec().encode(large(ctx.message().key() + "-enriched"))).build()
                        .withTopic("large-order-enriched")).toCompletableFuture().join());
        bus.subscribe("billing", "large-order-enriched", LargeOrder.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.NONE), (e, ctx) -> {
                    throw new IllegalStateException("billing down");
                });
        bus.publish("large-order", "o-1", large("o-1")).toCompletableFuture().join();
        transport.drainAll();

        assertEquals(1, transport.messages("large-order-enriched.DLT").size());
        assertEquals(0, store.size(), "both payloads released: every group is done with both records");
        assertFalse(transport.messages("large-order-enriched").get(0).headers().containsKey(PayloadReference.RESOLVED_ID_HEADER),
                "the forwarded record does not carry the first topic's resolution");
        assertEquals(0, claimCheck.pendingMessages());
    }

    @Test
    void expiryShorterThanTheReplayHorizonIsRefused() {
        start(false);
        InMemoryTransport retained = InMemoryTransport.builder().retention(Duration.ofDays(7)).build();
        try {
            ConfigurationException error = assertThrows(ConfigurationException.class,
                    () -> ClaimCheckInterceptor.builder(store, retained).expiry(Duration.ofDays(1)).build());
            assertTrue(error.getMessage().contains("PT24H") && error.getMessage().contains("PT168H"), error.getMessage());
        } finally {
            retained.close();
        }
    }

    @Test
    void refusalOfAMalformedReferenceQuotesTheMessageAndPayloadIdsBounded() {
        start(false);
        String huge = "r".repeat(10_000);
        Message received = Message.builder("large-order").id("m-" + huge).type("large-order")
                .payload(new byte[0]).header(PayloadReference.ID_HEADER, "p-" + huge).build();

        ClaimCheckException refused = assertThrows(ClaimCheckException.class,
                () -> claimCheck.afterReceive(received, "billing"));

        assertTrue(refused.getMessage().length() < 400, refused.getMessage());
        assertTrue(refused.getMessage().contains("'m-rrr"), refused.getMessage());
        assertTrue(refused.getMessage().contains("(10002 characters)"), refused.getMessage());
        ClaimCheckException missing = ClaimCheckException.missing(
                new PayloadReference("p-1", 3, "0".repeat(64), "application/json"), "m-" + huge);
        assertTrue(missing.getMessage().length() < 400, missing.getMessage());
        assertEquals("p-1", missing.payloadId());
    }
}
