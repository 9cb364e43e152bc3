package io.streamsaga.inmemory;

import io.streamsaga.CapturedLog;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.MDC;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With {@code logContext(true)} the delivered message's id, topic, group and correlation id are in slf4j's MDC while
 * the bus handles it, and the delivering thread's own values are back afterwards (the tests' slf4j provider,
 * MdcTestLoggingProvider in saga-core's test-jar, has a working MDC). docs/architecture.md, "Log correlation".
 */
class BusLogContextTest {
    record OrderPlaced(String orderId) {
    }

    record PaymentTaken(String orderId) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class)
            .register("payment-taken", 1, PaymentTaken.class).build();

    private final List<String> seen = new CopyOnWriteArrayList<>();

    @AfterEach
    void clear() {
        MDC.clear();
    }

    private void see(String handler) {
        seen.add(handler + " " + MDC.get("streamsaga.messageId") + " " + MDC.get("streamsaga.topic") + " "
                + MDC.get("streamsaga.group") + " " + MDC.get("streamsaga.correlationId"));
    }

    @Test
    void aHandlerSeesItsMessagesKeysAndTheCorrelationIdOfTheConversationAndTheThreadsOwnAreBackAfter() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler()).logContext(true).build();
        bus.subscribe("payments", "order-placed", OrderPlaced.class, (event, ctx) -> {
            see("payments");
            bus.publish("payment-taken", event.orderId(), new PaymentTaken(event.orderId())).toCompletableFuture().join();
        });
        bus.subscribe("shipping", "payment-taken", PaymentTaken.class, (event, ctx) -> see("shipping"));
        MDC.put("streamsaga.topic", "the-callers-topic");
        MDC.put("request", "r-1");

        bus.publish("order-placed", "o-1", new OrderPlaced("o-1")).toCompletableFuture().join();
        transport.drainAll(); // delivers on this thread

        String placed = transport.messages("order-placed").get(0).id();
        String taken = transport.messages("payment-taken").get(0).id();
        assertEquals(List.of("payments " + placed + " order-placed payments " + placed,
                "shipping " + taken + " payment-taken shipping " + placed), seen);
        assertEquals(Map.of("streamsaga.topic", "the-callers-topic", "request", "r-1"), MDC.getCopyOfContextMap());
    }

    @Test
    void aDeliveryNestedInAHandlerOnTheSameThreadPutsBackTheOuterMessagesKeys() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        InMemoryTransport other = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler()).logContext(true).build();
        EventBus otherBus = EventBus.builder(other).types(TYPES).scheduler(new VirtualScheduler()).logContext(true)
                .build();
        bus.subscribe("payments", "order-placed", OrderPlaced.class, (event, ctx) -> {
            see("payments");
            otherBus.publish("payment-taken", event.orderId(), new PaymentTaken(event.orderId()))
                    .toCompletableFuture().join();
            other.drainAll(); // the other bus's delivery, inside this one, on this thread
            see("payments after");
        });
        otherBus.subscribe("shipping", "payment-taken", PaymentTaken.class, (event, ctx) -> see("shipping"));
        MDC.put("request", "r-1");

        bus.publish("order-placed", "o-1", new OrderPlaced("o-1")).toCompletableFuture().join();
        transport.drainAll();

        String placed = transport.messages("order-placed").get(0).id();
        String taken = other.messages("payment-taken").get(0).id();
        String outer = placed + " order-placed payments " + placed;
        assertEquals(List.of("payments " + outer, "shipping " + taken + " payment-taken shipping " + taken,
                "payments after " + outer), seen);
        assertEquals(Map.of("request", "r-1"), MDC.getCopyOfContextMap());
    }

    @Test
    void withoutLogContextTheBusLeavesTheMdcAlone() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler()).build();
        bus.subscribe("payments", "order-placed", OrderPlaced.class, (event, ctx) -> see("payments"));

        bus.publish("order-placed", "o-1", new OrderPlaced("o-1")).toCompletableFuture().join();
        transport.drainAll();

        assertEquals(List.of("payments null null null null"), seen);
    }

    @Test
    void theBussOwnLogLineAboutADeadLetterCarriesTheMessagesKeys() throws Throwable {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler())
                .retryPolicy(RetryPolicy.NONE).logContext(true).build();
        bus.subscribe("payments", "order-placed", OrderPlaced.class, (event, ctx) -> {
            throw new IllegalStateException("card declined");
        });
        bus.publish("order-placed", "o-1", new OrderPlaced("o-1")).toCompletableFuture().join();

        String log = CapturedLog.ofThisThread(transport::drainAll);

        Message placed = transport.messages("order-placed").get(0);
        assertTrue(log.contains("WARN io.streamsaga.internal.bus.DefaultEventBus - dead-lettered"), log);
        assertTrue(log.contains("mdc={streamsaga.correlationId=" + placed.id() + ", streamsaga.group=payments,"
                + " streamsaga.messageId=" + placed.id() + ", streamsaga.offset=0, streamsaga.partition=0,"
                + " streamsaga.topic=order-placed}"), log);
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @Test
    void aHandlerSeesThePartitionAndOffsetItsMessageWasDeliveredFrom() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(2).deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(TYPES).scheduler(new VirtualScheduler()).logContext(true).build();
        bus.subscribe("payments", "order-placed", OrderPlaced.class, (event, ctx) -> seen.add(
                MDC.get("streamsaga.partition") + "/" + MDC.get("streamsaga.offset") + " " + ctx.partition() + "/"
                        + ctx.offset()));
        MDC.put("streamsaga.offset", "the-callers-offset");

        for (int i = 0; i < 6; i++) { // both partitions, some at offsets above 0
            bus.publish("order-placed", "o-" + i, new OrderPlaced("o-" + i)).toCompletableFuture().join();
        }
        transport.drainAll();

        assertEquals(6, seen.size(), seen.toString());
        for (String delivery : seen) {
            String[] keysAndContext = delivery.split(" ");
            assertEquals(keysAndContext[1], keysAndContext[0], "the keys are the DeliveryContext's partition/offset");
        }
        assertEquals(2, seen.stream().map(d -> d.split("/")[0]).distinct().count(), seen.toString());
        assertTrue(seen.stream().anyMatch(d -> !d.split(" ")[0].endsWith("/0")), seen.toString());
        assertEquals(Map.of("streamsaga.offset", "the-callers-offset"), MDC.getCopyOfContextMap());
    }
}
