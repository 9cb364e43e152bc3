package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Remote saga steps over Kafka: the orchestrator and the payment participant are separate services, each
 * with its own Kafka transport; the command and the reply travel as Kafka topics.
 */
class KafkaRemoteSagaStepTest {
    record OrderData(String orderId, long amount, String paymentId) {
        OrderData withPayment(String id) {
            return new OrderData(orderId, amount, id);
        }
    }

    record ProcessPayment(String orderId, long amount) {
    }

    record PaymentReply(String orderId, String paymentId, boolean approved) {
    }

    record CancelOrder(String orderId) {
    }

    record OrderCancelled(String orderId) {
    }

    private static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("process-payment", 1, ProcessPayment.class)
                .register("payment-reply", 1, PaymentReply.class)
                .register("cancel-order", 1, CancelOrder.class)
                .register("order-cancelled", 1, OrderCancelled.class)
                .build();
    }

    private final List<String> cancelledOrders = new CopyOnWriteArrayList<>();
    private final List<Message> commandsSeen = new CopyOnWriteArrayList<>();
    private String commands;
    private String orderCommands;
    private final List<Message> cancellationsSeen = new CopyOnWriteArrayList<>();
    private KafkaTransport orchestratorKafka;
    private KafkaTransport paymentKafka;
    private EventBus orchestratorBus;
    private EventBus paymentBus;
    private SagaOrchestrator orchestrator;

    @BeforeEach
    void startServices() {
        commands = SharedKafkaBroker.unique("payment-commands");
        orderCommands = SharedKafkaBroker.unique("order-commands");
        String replies = SharedKafkaBroker.unique("order-saga-replies");
        orchestratorKafka = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
        paymentKafka = KafkaTransport.builder().bootstrapServers(SharedKafkaBroker.bootstrapServers()).build();
        orchestratorBus = EventBus.builder(orchestratorKafka).types(types()).build();
        paymentBus = EventBus.builder(paymentKafka).types(types()).build();
        // The payment service approves amounts up to 1000 and replies on the topic the command names.
        paymentBus.subscribe("payment-service", commands, ProcessPayment.class, (command, ctx) -> {
            commandsSeen.add(ctx.message());
            SagaMessages.reply(paymentBus, ctx.message(),
                    new PaymentReply(command.orderId(), "pay-" + command.orderId(), command.amount() <= 1000))
                    .toCompletableFuture().join();
        });
        // The order service (in the same process as the payment service here) cancels orders on command.
        paymentBus.subscribe("order-service", orderCommands, CancelOrder.class, (command, ctx) -> {
            cancellationsSeen.add(ctx.message());
            cancelledOrders.add(command.orderId());
            SagaMessages.reply(paymentBus, ctx.message(), new OrderCancelled(command.orderId())).toCompletableFuture().join();
        });
        orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(orchestratorBus)
                .replyTopic(replies).group(SharedKafkaBroker.unique("order-saga")).register(definition()).build();
    }

    @AfterEach
    void stopServices() {
        orchestrator.close();
        orchestratorBus.close();
        paymentBus.close();
        orchestratorKafka.close();
        paymentKafka.close();
    }

    private SagaDefinition<OrderData> definition() {
        return paymentAfter(SagaDefinition.builder("kafka-order-saga", OrderData.class)
                .dataType("kafka-order-saga-data")
                .step("create-order")
                    .action((order, ctx) -> order)
                    .compensation((order, ctx) -> cancelledOrders.add(order.orderId())));
    }

    /** The order is cancelled by a command to the order service, completed by its reply. */
    private SagaDefinition<OrderData> definitionWithRemoteCancellation() {
        return paymentAfter(SagaDefinition.builder("kafka-order-saga-remote-cancel", OrderData.class)
                .dataType("kafka-order-saga-data")
                .step("create-order")
                    .action((order, ctx) -> order)
                    .compensationCommand(orderCommands, (order, ctx) -> new CancelOrder(order.orderId()))
                    .onCompensationReply(OrderCancelled.class, (order, reply) -> { })
                    .timeout(Duration.ofSeconds(60)));
    }

    private SagaDefinition<OrderData> paymentAfter(SagaDefinition.StepBuilder<OrderData> saga) {
        return saga
                .step("process-payment")
                    .command(commands, (order, ctx) -> new ProcessPayment(order.orderId(), order.amount()))
                    .onReply(PaymentReply.class, (order, reply) -> {
                        if (!reply.approved()) {
                            throw new IllegalStateException("payment declined for " + reply.orderId());
                        }
                        return order.withPayment(reply.paymentId());
                    })
                    .timeout(Duration.ofSeconds(60))
                .build();
    }

    @Test
    void remoteStepCompletesOnTheParticipantsReplyOverKafka() throws Exception {
        SagaResult<OrderData> result = orchestrator.start(definition(), new OrderData("o-1", 500, null))
                .toCompletableFuture().get(60, TimeUnit.SECONDS);

        assertTrue(result.isCompleted(), result.toString());
        assertEquals("pay-o-1", result.data().paymentId());
        assertEquals(1, commandsSeen.size());
        assertEquals(result.sagaId(), commandsSeen.get(0).sagaId().orElseThrow());
        assertEquals(List.of(), cancelledOrders);
    }

    @Test
    void declinedReplyCompensatesTheEarlierStep() throws Exception {
        SagaResult<OrderData> result = orchestrator.start(definition(), new OrderData("o-2", 5000, null))
                .toCompletableFuture().get(60, TimeUnit.SECONDS);

        assertTrue(result.isCompensated(), result.toString());
        assertEquals(List.of("o-2"), cancelledOrders);
    }

    @Test
    void aRemoteCompensationTravelsAsACommandAndCompletesOnItsReplyOverKafka() throws Exception {
        SagaResult<OrderData> result = orchestrator.start(definitionWithRemoteCancellation(), new OrderData("o-3", 5000, null))
                .toCompletableFuture().get(60, TimeUnit.SECONDS);

        assertTrue(result.isCompensated(), result.toString());
        assertEquals(List.of("o-3"), cancelledOrders);
        assertEquals(1, cancellationsSeen.size());
        assertEquals(SagaMessages.COMPENSATION, cancellationsSeen.get(0).header(SagaMessages.PHASE).orElseThrow());
        assertEquals(result.sagaId() + "/create-order/compensation",
                cancellationsSeen.get(0).header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow());
    }
}
