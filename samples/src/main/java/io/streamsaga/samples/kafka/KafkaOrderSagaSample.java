package io.streamsaga.samples.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;

import java.io.PrintStream;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The source's {@code OrderSaga} over Apache Kafka, with its participants as separate services: the
 * orchestrator creates the order locally, then sends {@code reserve-inventory} and {@code process-payment}
 * commands to the Inventory and Payment services' topics and completes each step on their replies. When the
 * payment is declined, the completed steps are compensated in reverse order: a {@code release-inventory}
 * command to the Inventory service (a remote compensation, completed by its {@code inventory-released}
 * reply), then the order is cancelled.
 *
 * <p>{@code --fail-payment} makes the payment service decline; {@code --bootstrap-servers host:port} uses an
 * existing cluster instead of starting an embedded broker.
 */
public final class KafkaOrderSagaSample {

    /** The saga data. */
    public record OrderData(String customer, long amount, String orderId, String reservationId, String paymentId) {
        OrderData with(String order, String reservation, String payment) {
            return new OrderData(customer, amount, order, reservation, payment);
        }
    }

    @EventType("reserve-inventory")
    public record ReserveInventory(String orderId) {
    }

    @EventType("inventory-reserved")
    public record InventoryReserved(String orderId, String reservationId) {
    }

    @EventType("release-inventory")
    public record ReleaseInventory(String orderId, String reservationId) {
    }

    @EventType("inventory-released")
    public record InventoryReleased(String orderId, String reservationId) {
    }

    @EventType("process-payment")
    public record ProcessPayment(String orderId, long amount) {
    }

    @EventType("payment-result")
    public record PaymentResult(String orderId, String paymentId, boolean approved) {
    }

    /** What a run did, for the sample's test. */
    public record Outcome(SagaResult<OrderData> result, List<String> effects) {
    }

    private KafkaOrderSagaSample() {
    }

    public static void main(String[] args) throws Exception {
        KafkaMicroservicesSample.quietKafkaLogs();
        String bootstrap = null;
        boolean failPayment = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap-servers" -> bootstrap = args[++i];
                case "--fail-payment" -> failPayment = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i]
                        + "'; use --bootstrap-servers host:port, --fail-payment");
            }
        }
        if (bootstrap != null) {
            run(bootstrap, failPayment, System.out);
            return;
        }
        System.out.println("Starting an embedded single-node Kafka broker (KRaft) for the demo...");
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start()) {
            run(broker.bootstrapServers(), failPayment, System.out);
        }
    }

    /** Runs one OrderSaga with the orchestrator, Inventory and Payment as separate Kafka clients. */
    public static Outcome run(String bootstrapServers, boolean failPayment, PrintStream out) throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 6);
        String inventoryCommands = "inventory-commands-" + run;
        String inventoryReleases = "inventory-releases-" + run;
        String paymentCommands = "payment-commands-" + run;
        TypeRegistry types = TypeRegistry.builder().register(ReserveInventory.class).register(InventoryReserved.class)
                .register(ReleaseInventory.class).register(InventoryReleased.class).register(ProcessPayment.class).register(PaymentResult.class).build();
        List<String> effects = new CopyOnWriteArrayList<>();

        try (KafkaTransport orchestratorKafka = kafka(bootstrapServers, "order-service");
             KafkaTransport inventoryKafka = kafka(bootstrapServers, "inventory-service");
             KafkaTransport paymentKafka = kafka(bootstrapServers, "payment-service");
             EventBus orchestratorBus = EventBus.builder(orchestratorKafka).types(types).build();
             EventBus inventoryBus = EventBus.builder(inventoryKafka).types(types).build();
             EventBus paymentBus = EventBus.builder(paymentKafka).types(types).build()) {

            inventoryBus.subscribe("inventory-service", inventoryCommands, ReserveInventory.class, (command, ctx) -> {
                String reservation = "res-" + command.orderId();
                effects.add("inventory reserved " + reservation);
                out.printf("[inventory] reserved stock for %s -> %s%n", command.orderId(), reservation);
                SagaMessages.reply(inventoryBus, ctx.message(), new InventoryReserved(command.orderId(), reservation))
                        .toCompletableFuture().join();
            });
            inventoryBus.subscribe("inventory-service", inventoryReleases, ReleaseInventory.class, (command, ctx) -> {
                effects.add("inventory released " + command.reservationId());
                out.printf("[inventory] released %s%n", command.reservationId());
                SagaMessages.reply(inventoryBus, ctx.message(), new InventoryReleased(command.orderId(), command.reservationId()))
                        .toCompletableFuture().join();
            });
            paymentBus.subscribe("payment-service", paymentCommands, ProcessPayment.class, (command, ctx) -> {
                boolean approved = !failPayment;
                out.printf("[payment]   %s %d for %s%n", approved ? "charged" : "DECLINED", command.amount(), command.orderId());
                SagaMessages.reply(paymentBus, ctx.message(),
                        new PaymentResult(command.orderId(), approved ? "pay-" + command.orderId() : null, approved))
                        .toCompletableFuture().join();
            });

            SagaDefinition<OrderData> definition = SagaDefinition.builder("kafka-order-saga", OrderData.class)
                    .dataType("kafka-order-saga-data")
                    .step("create-order")
                        .action((order, ctx) -> {
                            String orderId = "order-" + run;
                            effects.add("order created " + orderId);
                            out.printf("[order]     created %s for %s%n", orderId, order.customer());
                            return order.with(orderId, null, null);
                        })
                        .compensation((order, ctx) -> {
                            effects.add("order cancelled " + order.orderId());
                            out.printf("[order]     cancelled %s%n", order.orderId());
                        })
                    .step("reserve-inventory")
                        .command(inventoryCommands, (order, ctx) -> new ReserveInventory(order.orderId()))
                        .onReply(InventoryReserved.class, (order, reply) -> order.with(order.orderId(), reply.reservationId(), null))
                        .timeout(Duration.ofSeconds(60))
                        .compensationCommand(inventoryReleases,
                                (order, ctx) -> new ReleaseInventory(order.orderId(), order.reservationId()))
                        .onCompensationReply(InventoryReleased.class, (order, reply) -> { })
                    .step("process-payment")
                        .command(paymentCommands, (order, ctx) -> new ProcessPayment(order.orderId(), order.amount()))
                        .onReply(PaymentResult.class, (order, reply) -> {
                            if (!reply.approved()) {
                                throw new IllegalStateException("payment declined for " + reply.orderId());
                            }
                            return order.with(order.orderId(), order.reservationId(), reply.paymentId());
                        })
                        .timeout(Duration.ofSeconds(60))
                    .build();

            try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                    .bus(orchestratorBus).replyTopic("order-saga-replies-" + run).group("order-saga-" + run)
                    .register(definition).build()) {
                SagaResult<OrderData> result = orchestrator.start(definition, new OrderData("alice", 250, null, null, null))
                        .toCompletableFuture().get(120, TimeUnit.SECONDS);
                out.printf("[saga]      %s: %s%n", result.outcome(), result.data());
                return new Outcome(result, List.copyOf(effects));
            }
        }
    }

    private static KafkaTransport kafka(String bootstrapServers, String service) {
        return KafkaTransport.builder().bootstrapServers(bootstrapServers).clientIdPrefix(service).build();
    }
}
