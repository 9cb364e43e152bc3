package io.streamsaga.samples;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.codec.EventType;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Command;
import io.streamsaga.cqrs.CommandBus;
import io.streamsaga.cqrs.CommandHandler;
import io.streamsaga.cqrs.CommandResult;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.cqrs.Query;
import io.streamsaga.cqrs.QueryBus;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.lambda.ServingLayer;
import io.streamsaga.message.Message;
import io.streamsaga.micrometer.MicrometerMetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.samples.choreography.OrderEvents;
import io.streamsaga.samples.choreography.Services.InventoryService;
import io.streamsaga.samples.choreography.Services.OrderService;
import io.streamsaga.samples.choreography.Services.PaymentService;
import io.streamsaga.samples.saga.OrderSagaSample;
import org.junit.jupiter.api.Test;

import javax.sql.DataSource;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java snippets of README.md and docs/*.md, as an adopter copies them: each is here (or in the sample or test it
 * was taken from) with the imports and surrounding code it needs, so the build compiles it against the current API,
 * and where it runs without a broker it is run and checked against what the text around it says.
 * {@link #everyLineOfEveryJavaSnippetInTheDocsIsCompiledCode} ties the documents to the code: each code line of a
 * {@code ```java} block must appear, whitespace aside, in a Java source of the repository (this file, a sample, the
 * test it quotes), so a snippet edited without its code, or code renamed under a snippet, fails the build. A line
 * holding {@code ...} is an elision and is not checked; nor are comments.
 */
class DocsSnippetsTest {

    private static final Pattern JAVA_BLOCK = Pattern.compile("(?s)```java\\n(.*?)```");

    @Test
    void everyLineOfEveryJavaSnippetInTheDocsIsCompiledCode() throws IOException {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isRegularFile(root.resolve("README.md"))) {
            root = root.getParent();
        }
        assertTrue(root != null, "no README.md above " + Path.of("").toAbsolutePath());
        StringBuilder sources = new StringBuilder();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path source : files.filter(p -> p.toString().endsWith(".java"))
                    .filter(p -> p.toString().contains("/src/") && !p.toString().contains("/target/")).toList()) {
                for (String line : Files.readAllLines(source)) {
                    sources.append(normalise(line)).append('\n');
                }
            }
        }
        List<Path> docs = new ArrayList<>(List.of(root.resolve("README.md")));
        try (Stream<Path> files = Files.list(root.resolve("docs"))) {
            files.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
        }
        TreeSet<String> missing = new TreeSet<>();
        int checked = 0;
        for (Path doc : docs) {
            Matcher block = JAVA_BLOCK.matcher(Files.readString(doc));
            while (block.find()) {
                for (String line : block.group(1).split("\n")) {
                    String code = normalise(line);
                    if (code.isEmpty() || code.contains("...")) {
                        continue;
                    }
                    checked++;
                    if (sources.indexOf(code) < 0) {
                        missing.add(root.relativize(doc) + ": " + code);
                    }
                }
            }
        }
        assertTrue(checked > 150, "only " + checked + " snippet lines found: is the ```java pattern still right?");
        assertTrue(missing.isEmpty(), "snippet lines that no Java source compiles: " + missing);
    }

    /** The code of a line: its trailing or whole-line comment dropped, whitespace runs as one space. */
    private static String normalise(String line) {
        String code = line.strip();
        if (code.startsWith("//")) {
            return "";
        }
        int comment = code.indexOf(" //");
        if (comment >= 0) {
            code = code.substring(0, comment);
        }
        return code.replaceAll("\\s+", " ").strip();
    }

    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    // ---- README.md: the quick start (QuickStart.java, run by QuickStartTest), its handler class as a top-level class

    @EventType("payment-processed")
    record PaymentProcessed(String orderId) { }

    private final List<String> paymentsTracked = new CopyOnWriteArrayList<>();

    // Declarative handlers, as NestJS's @EventPattern('payment-processed')
    public class AnalyticsService {
        @EventPattern("payment-processed")
        public void trackPayment(PaymentProcessed payment) {
            paymentsTracked.add(payment.orderId());
        }
    }

    @Test
    void readmeAnalyticsServiceAsWrittenIsRegisteredByItsEventPattern() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder().register(PaymentProcessed.class).build())
                .scheduler(new VirtualScheduler()).build()) {
            bus.register("analytics-service", new AnalyticsService());
            bus.publish("payment-processed", "order-1", new PaymentProcessed("order-1"));
            transport.drainAll();
            assertEquals(List.of("order-1"), paymentsTracked);
        } finally {
            transport.close();
        }
    }

    @Test
    void readmePublishInsideAHandlerCarriesTheCorrelationIdAndAThrowingHandlerIsRetriedThenDeadLettered() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        TypeRegistry types = TypeRegistry.builder()
                .register(OrderCreated.class)
                .register(PaymentProcessed.class)
                .build();
        try (EventBus bus = EventBus.builder(transport).types(types).scheduler(new VirtualScheduler()).build()) {
            bus.subscribe("payment-service", "order-created", OrderCreated.class,
                    (order, ctx) -> bus.publish("payment-processed", order.orderId(), new PaymentProcessed(order.orderId())));
            bus.subscribe("broken-service", "order-created", OrderCreated.class, (order, ctx) -> {
                throw new IllegalStateException("broken for " + order.orderId());
            });
            bus.publish("order-created", "order-1", new OrderCreated("order-1", 2500));
            transport.drainAll();

            String created = transport.messages("order-created").get(0).id();
            io.streamsaga.message.Message payment = transport.messages("payment-processed").get(0);
            assertEquals(java.util.Optional.of(created), payment.correlationId());
            assertEquals(java.util.Optional.of(created), payment.causationId());
            io.streamsaga.message.Message deadLetter = transport.messages("order-created.DLT").get(0);
            assertEquals(java.util.Optional.of("broken for order-1"), deadLetter.header("dlt-error-message"));
            assertEquals(java.util.Optional.of(String.valueOf(RetryPolicy.DEFAULT.maxAttempts())), deadLetter.header("dlt-attempts"));
        } finally {
            transport.close();
        }
    }

    @Test
    void readmeANewGroupGetsOnlyWhatIsPublishedAfterItSubscribedUnlessItStartsFromTheEarliest() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder().register(OrderCreated.class).build())
                .scheduler(new VirtualScheduler()).build()) {
            bus.publish("order-created", "alice", new OrderCreated("order-1", 2500)); // one key: one partition, in order
            List<String> latest = new ArrayList<>();
            List<String> earliest = new ArrayList<>();
            bus.subscribe("late-service", "order-created", OrderCreated.class, (order, ctx) -> latest.add(order.orderId()));
            bus.subscribe("replaying-service", "order-created", OrderCreated.class, SubscriptionOptions.fromEarliest(),
                    (order, ctx) -> earliest.add(order.orderId()));
            bus.publish("order-created", "alice", new OrderCreated("order-2", 900));
            transport.drainAll();

            assertEquals(List.of("order-2"), latest);
            assertEquals(List.of("order-1", "order-2"), earliest);
        } finally {
            transport.close();
        }
    }

    // ---- docs/sagas.md, "The definition DSL"

    record OrderData(String customer, List<String> items, long amount, String orderId, String reservationId,
                     String paymentId) {
        OrderData withOrderId(String id) {
            return new OrderData(customer, items, amount, id, reservationId, paymentId);
        }

        OrderData withReservationId(String id) {
            return new OrderData(customer, items, amount, orderId, id, paymentId);
        }

        OrderData withPaymentId(String id) {
            return new OrderData(customer, items, amount, orderId, reservationId, id);
        }
    }

    record ProcessPayment(String orderId, long amount) { }

    record PaymentResult(boolean approved, String reason, String paymentId) { }

    static final class PaymentDeclined extends RuntimeException {
        PaymentDeclined(String reason) {
            super(reason);
        }
    }

    /** The application's order, inventory and shipping services of the snippet, recording what they did. */
    static final class Effects {
        final List<String> done = new CopyOnWriteArrayList<>();
        final Effects orders = this;
        final Effects inventory = this;
        final Effects shipping = this;

        String create(OrderData order, String key) {
            done.add("create " + key);
            return "order-1";
        }

        void cancel(String orderId, String key) {
            done.add("cancel " + orderId);
        }

        String reserve(List<String> items, String key) {
            done.add("reserve " + items);
            return "reservation-1";
        }

        void release(String reservationId, String key) {
            done.add("release " + reservationId);
        }

        void schedule(String orderId, String key) {
            done.add("ship " + orderId);
        }
    }

    private static SagaResult<OrderData> runTheDslSnippet(boolean approve, Effects effects) {
        Effects orders = effects.orders;
        Effects inventory = effects.inventory;
        Effects shipping = effects.shipping;
        OrderData newOrder = new OrderData("an", List.of("book"), 2500, null, null, null);
        InMemoryTransport transport = InMemoryTransport.create();
        SagaStore store = new InMemorySagaStore();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder()
                .register("process-payment", 1, ProcessPayment.class)
                .register("payment-result", 1, PaymentResult.class).build()).build()) {
            bus.subscribe("payment-service", "payment-commands", ProcessPayment.class, (command, context) ->
                    SagaMessages.reply(bus, context.message(), new PaymentResult(approve, approve ? null : "card declined",
                            approve ? "payment-1" : null)));

            SagaDefinition<OrderData> orderSaga = SagaDefinition.builder("order-saga", OrderData.class)
                .version(1)
                .dataType("order-saga-data")                 // stable type id of the saga data in stores
                .step("create-order")
                    .action((order, ctx) -> order.withOrderId(orders.create(order, ctx.idempotencyKey())))
                    .compensation((order, ctx) -> orders.cancel(order.orderId(), ctx.idempotencyKey()))
                .step("reserve-inventory")
                    .action((order, ctx) -> order.withReservationId(inventory.reserve(order.items(), ctx.idempotencyKey())))
                    .compensation((order, ctx) -> inventory.release(order.reservationId(), ctx.idempotencyKey()))
                    .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofMillis(200)).build())
                .pivot("process-payment")                     // remote: a command on the bus, completed by the reply
                    .command("payment-commands", (order, ctx) -> new ProcessPayment(order.orderId(), order.amount()))
                    .onReply(PaymentResult.class, (order, reply) -> {
                        if (!reply.approved()) throw new PaymentDeclined(reply.reason());
                        return order.withPaymentId(reply.paymentId());
                    })
                    .timeout(Duration.ofMinutes(10))
                .retriable("schedule-shipping")
                    .action((order, ctx) -> { shipping.schedule(order.orderId(), ctx.idempotencyKey()); return order; })
                .build();

            try (SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(store).bus(bus)                        // the bus: for remote steps and lifecycle events
                .register(orderSaga)                          // so that recover() can resume its instances
                .publishLifecycleEvents("saga-lifecycle")
                .build()) {
                orchestrator.recover();                           // at start-up: resume what a previous process left
                SagaResult<OrderData> result = orchestrator.start(orderSaga, "order-42", newOrder).toCompletableFuture().join();
                return result;
            }
        } finally {
            transport.close();
        }
    }

    @Test
    void sagaDslSnippetCompletesWhenThePaymentIsApprovedAndUndoesTheStepsBeforeThePivotInReverseWhenDeclined() {
        Effects approved = new Effects();
        SagaResult<OrderData> completed = runTheDslSnippet(true, approved);
        assertTrue(completed.isCompleted(), completed.toString());
        assertEquals("payment-1", completed.data().paymentId());
        assertEquals(List.of("create " + completed.sagaId() + "/create-order", "reserve [book]", "ship order-1"), approved.done);

        Effects declined = new Effects();
        SagaResult<OrderData> compensated = runTheDslSnippet(false, declined);
        assertTrue(compensated.isCompensated(), compensated.toString());
        assertInstanceOf(PaymentDeclined.class, compensated.cause().orElseThrow());
        assertEquals(List.of("create " + compensated.sagaId() + "/create-order", "reserve [book]", "release reservation-1", "cancel order-1"),
                declined.done);
    }

    // ---- docs/sagas.md, remote steps, parallel groups, recovery, ownership

    record Booking(String passenger, String seatId, String hotel) {
        Booking withSeat(String seat) {
            return new Booking(passenger, seat, hotel);
        }
    }

    record ReserveSeat(String passenger) { }

    record SeatReserved(String seatId) { }

    record ReleaseSeat(String seatId) { }

    record SeatReleased(boolean released) { }

    record BookFlight(String passenger) { }

    record FlightBooked(String flight) { }

    @Test
    void sagaRemoteStepAndParallelGroupSnippetsBuildDefinitionsOfTheDescribedShape() {
        SagaDefinition<Booking> seats = SagaDefinition.builder("booking", Booking.class)
            .step("reserve-seat")
                .command("seat-commands", ReserveSeat.class, (booking, ctx) -> new ReserveSeat(booking.passenger()))
                .onReply(SeatReserved.class, (booking, reply) -> booking.withSeat(reply.seatId()))
                .compensationCommand("seat-release-commands", ReleaseSeat.class,
                    (booking, ctx) -> new ReleaseSeat(booking.seatId()))
                .onCompensationReply(SeatReleased.class, (booking, reply) -> {
                    if (!reply.released()) throw new IllegalStateException("release refused");
                })
                .timeout(Duration.ofSeconds(30))               // each wait for the action's reply
                .compensationTimeout(Duration.ofMinutes(5))    // each wait for the compensation's (if unset: the timeout)
            .build();
        assertEquals(Duration.ofSeconds(30), seats.step("reserve-seat").timeout());
        assertEquals(Duration.ofMinutes(5), seats.step("reserve-seat").compensationTimeout());
        assertEquals(ReserveSeat.class, seats.step("reserve-seat").remote().orElseThrow().commandType());
        assertEquals(ReleaseSeat.class, seats.step("reserve-seat").remoteCompensation().orElseThrow().commandType());

        SagaDefinition<Booking> trip = SagaDefinition.builder("trip", Booking.class)
            .parallel(group -> {
                group.step("book-hotel").action((booking, ctx) -> booking).compensation((booking, ctx) -> { });
                group.step("book-flight").command("flight-commands", (booking, ctx) -> new BookFlight(booking.passenger()))
                    .onReply(FlightBooked.class, (booking, reply) -> booking)
                    .compensation((booking, ctx) -> { });
                group.merge((current, memberResult) -> current);  // members changing different fields: merge them
            })
            .build();
        assertEquals(List.of(List.of("book-hotel", "book-flight")),
                trip.groups().stream().map(g -> g.stream().map(s -> s.name()).toList()).toList());
    }

    @Test
    void sagaRecoveryAndOwnershipSnippetsRunOverTheInMemoryStoreAsANodeRegistry() {
        OrderServices services = new OrderServices();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        SagaStore store = new InMemorySagaStore();
        try (EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).build()) {
            SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                    .store(store)                          // InMemorySagaStore or JdbcSagaStore: a NodeRegistry too
                    .bus(bus)
                    .register(OrderSaga.definition(services))
                    .ownership("orders-7f9c-1", Duration.ofSeconds(10), Duration.ofSeconds(60)) // node id, heartbeat, lease
                    .recoverEvery(Duration.ofSeconds(30), Duration.ZERO)
                    .build();
            orchestrator.recover();                        // at start-up, as before
            SagaOrchestrator.RecoveryReport report = orchestrator.recover(Duration.ofMinutes(5));
            assertEquals(List.of(), report.resumed());
            orchestrator.close();
        } finally {
            transport.close();
        }
    }

    // ---- docs/sagas.md, the test kit and crash exploration, over the OrderSaga sample

    /** The sample's OrderSaga under the names the guide uses. */
    static final class OrderSaga {
        static SagaDefinition<OrderSagaSample.OrderData> definition(OrderServices services) {
            return OrderSagaSample.definition(services.services);
        }
    }

    static final class OrderServices {
        final OrderSagaSample.Services services = new OrderSagaSample.Services(false, QUIET);

        /** Every effect of the saga's steps is undone once if it did not complete, none if it did. */
        void assertEveryEffectUndoneExactlyOnce(SagaStatus status) {
            List<String> effects = services.effects();
            Map<String, String> undoneBy = Map.of("created", "cancelled", "reserved", "released", "charged", "refunded");
            undoneBy.forEach((did, undid) -> {
                long done = effects.stream().filter(e -> e.contains("] " + did + " ")).count();
                long undone = effects.stream().filter(e -> e.contains("] " + undid + " ")).count();
                if (done > 1 || undone > (status == SagaStatus.COMPLETED ? 0 : done) || status == SagaStatus.COMPENSATED
                        && undone != done) {
                    throw new AssertionError(status + ": " + did + " " + done + " times, " + undid + " " + undone + " times in " + effects);
                }
            });
        }
    }

    @Test
    void sagaTestKitAndCrashExplorerSnippetsPassOnTheOrderSaga() {
        OrderSagaSample.OrderData order = new OrderSagaSample.OrderData("an", List.of("book"), 2500, null, null, null);
        SagaTestKit.given(env -> new OrderServices(), OrderSaga::definition, order)
            .failStep("process-payment", FailureMode.always())        // or once(), times(n)
            .failCompensation("reserve-inventory", FailureMode.once())
            .whenRun()
            .expectCompensated()
            .expectSteps("create-order", "reserve-inventory")
            .expectCompensations("reserve-inventory", "create-order")
            .expectFailureAt("process-payment");

        ExplorationReport report = SagaCrashExplorer.forSaga(env -> new OrderServices(), OrderSaga::definition, order)
            .invariant((services, run) -> services.assertEveryEffectUndoneExactlyOnce(run.status()))
            .explore();   // throws AssertionError listing every violation
        assertEquals(List.of(), report.violations());
        assertEquals(89, report.scenarios().size()); // "the OrderSaga's 71 become 89"
    }

    // ---- docs/architectures.md

    public record CreateOrderCommand(String userId, long amount) implements Command<String> { }

    public record GetOrdersQuery(String userId, String status) implements Query<List<OrderView>> { }

    public record OrderCreatedEvent(String orderId, String userId, long amount, Instant timestamp) { }

    public record OrderView(String orderId, String userId, String userName, String status, long amount, Instant createdAt) { }

    static final class OrderReadModel {
        private final Map<String, OrderView> rows = new java.util.concurrent.ConcurrentHashMap<>();

        void insert(OrderView row) {
            rows.put(row.orderId(), row);
        }

        List<OrderView> find(String userId, String status) {
            return rows.values().stream().filter(r -> r.userId().equals(userId) && r.status().equals(status)).toList();
        }
    }

    static final class CreateOrderHandler implements CommandHandler<CreateOrderCommand, String> {
        private final EventBus bus;

        CreateOrderHandler(EventBus bus) {
            this.bus = bus;
        }

        @Override
        public String execute(CreateOrderCommand command) {
            // joined, as docs/architectures.md asks before caughtUpToNow(): the event is in the log once send returns
            bus.publish("order-created", "ord-1", new OrderCreatedEvent("ord-1", command.userId(), command.amount(),
                    bus.scheduler().clock().instant())).toCompletableFuture().join();
            return "ord-1";
        }
    }

    @Test
    void cqrsSnippetAnswersTheQueryFromTheProjectionAndKeepsAnsweringDuringARebuild() {
        Map<String, String> users = Map.of("u-1", "Nguyen An");
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder()
                .register("order-created", 1, OrderCreatedEvent.class).build()).scheduler(new VirtualScheduler()).build()) {
            Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "order-read-model")
                    .start(ProjectionDefinition.builder(OrderReadModel::new)
                            .on("order-created", OrderCreatedEvent.class, (model, event, ctx) -> model.insert(new OrderView(
                                    event.orderId(), event.userId(), users.get(event.userId()), "created", event.amount(), event.timestamp())))
                            .build());
            QueryBus queries = new QueryBus().register(GetOrdersQuery.class, q -> projection.readModel().find(q.userId(), q.status()));
            CommandBus commands = new CommandBus().register(CreateOrderCommand.class, new CreateOrderHandler(bus));

            CommandResult<String> result = commands.send(new CreateOrderCommand("u-1", 250));
            assertInstanceOf(CommandResult.Accepted.class, result);
            transport.drainAll();
            assertEquals("Nguyen An", queries.ask(new GetOrdersQuery("u-1", "created")).get(0).userName());

            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild(); // queries keep working meanwhile
            assertEquals(1, queries.ask(new GetOrdersQuery("u-1", "created")).size());
            transport.drainAll();
            assertTrue(rebuild.swapped().toCompletableFuture().isDone());
            assertEquals(2, projection.version());
            assertEquals(1, queries.ask(new GetOrdersQuery("u-1", "created")).size());
            projection.close();
        } finally {
            transport.close();
        }
    }

    @Test
    void cqrsReadYourWritesSnippetQueriesTheOrderTheCommandJustCreated() {
        Map<String, String> users = Map.of("u-1", "Nguyen An");
        InMemoryTransport transport = InMemoryTransport.builder().build(); // delivery on consumer threads, as on a broker
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder()
                .register("order-created", 1, OrderCreatedEvent.class).build()).build();
             Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "order-read-model")
                     .start(ProjectionDefinition.builder(OrderReadModel::new)
                             .on("order-created", OrderCreatedEvent.class, (model, event, ctx) -> model.insert(new OrderView(
                                     event.orderId(), event.userId(), users.get(event.userId()), "created", event.amount(), event.timestamp())))
                             .build())) {
            QueryBus queries = new QueryBus().register(GetOrdersQuery.class, q -> projection.readModel().find(q.userId(), q.status()));
            CommandBus commands = new CommandBus().register(CreateOrderCommand.class, new CreateOrderHandler(bus));

            CommandResult<String> created = commands.send(new CreateOrderCommand("u-1", 250));
            projection.caughtUpToNow().toCompletableFuture().orTimeout(5, TimeUnit.SECONDS).join(); // the order's event is applied
            List<OrderView> mine = queries.ask(new GetOrdersQuery("u-1", "created")); // so the query sees the new order

            assertInstanceOf(CommandResult.Accepted.class, created);
            assertEquals(List.of("ord-1"), mine.stream().map(OrderView::orderId).toList());
        } finally {
            transport.close();
        }
    }

    record OrderPlaced(String orderId, LocalDate day, long amount) { }

    record DailyMetrics(long orders, long total) {
        static DailyMetrics empty() {
            return new DailyMetrics(0, 0);
        }

        DailyMetrics add(OrderPlaced order) {
            return new DailyMetrics(orders + 1, total + order.amount());
        }

        DailyMetrics merge(DailyMetrics other) {
            return new DailyMetrics(orders + other.orders, total + other.total);
        }
    }

    @Test
    void lambdaSnippetMergesTheDailyBatchViewWithTheRealTimeViewWithoutCountingTwice() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder()
                .register("order-placed", 1, OrderPlaced.class).build()).scheduler(scheduler).build()) {
            bus.publish("orders", "o-1", new OrderPlaced("o-1", LocalDate.of(2024, 5, 1), 100));
            ServingLayer<OrderPlaced, DailyMetrics> serving = ServingLayer.builder(bus, "order-metrics", "orders", OrderPlaced.class)
                    .view(DailyMetrics::empty, DailyMetrics::add)
                    .merge(DailyMetrics::merge)
                    .build().start();
            scheduler.schedule(Duration.ofDays(1), serving::recomputeBatch); // the daily job (reschedule it after each run)
            bus.publish("orders", "o-2", new OrderPlaced("o-2", LocalDate.of(2024, 5, 1), 20));
            transport.drainAll();
            scheduler.advance(Duration.ofDays(1));
            transport.drainAll();
            bus.publish("orders", "o-3", new OrderPlaced("o-3", LocalDate.of(2024, 5, 2), 3));
            transport.drainAll();
            DailyMetrics now = serving.query();
            assertEquals(new DailyMetrics(3, 123), now);
            serving.close();
        } finally {
            transport.close();
        }
    }

    @Test
    void monitoringSnippetScrapesTheBusCountersUnderTheirPrometheusNames() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        TypeRegistry types = TypeRegistry.builder().register(PaymentProcessed.class).build();
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        EventBus bus = EventBus.builder(transport).types(types).metrics(new MicrometerMetricsRecorder(registry)).build();
        try (bus) {
            bus.subscribe("analytics", "payment-processed", PaymentProcessed.class, (payment, ctx) -> { });
            bus.publish("payment-processed", "o-1", new PaymentProcessed("o-1"));
            transport.drainAll();
            String scrape = registry.scrape(); // serve it on /metrics
            assertTrue(scrape.contains("events_processed_total{group=\"analytics\",topic=\"payment-processed\"} 1.0"), scrape);
            assertTrue(scrape.contains("event_latency_seconds"), scrape);
        } finally {
            transport.close();
        }
    }

    // ---- docs/choreography.md

    @Test
    void choreographySnippetsRunTheOrderFlowToItsSuccessEventAndReportAFlowThatMissesItsDeadline() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        long cardLimit = 1_000;
        try (EventBus bus = EventBus.builder(transport).types(OrderEvents.types()).scheduler(scheduler).build()) {
            FlowDefinition orderFlow = FlowDefinition.builder("order-choreography")
                    .event("order-created", "OrderService", "InventoryService")      // event, emitter, reactors
                    .event("inventory-reserved", "InventoryService", "PaymentService")
                    .event("inventory-reservation-failed", "InventoryService")
                    .event("payment-processed", "PaymentService", "OrderService")
                    .event("payment-failed", "PaymentService", "OrderService")
                    .event("order-cancelled", "OrderService", "InventoryService")
                    .event("inventory-released", "InventoryService")
                    .succeedsOn("payment-processed")
                    .failsOn("inventory-reservation-failed", "inventory-released")
                    .deadline(Duration.ofSeconds(30))
                    .build();

            FlowTracker tracker = FlowTracker.builder(bus, orderFlow).build().start();
            tracker.onStalled(instance -> alert(instance.correlationId(), instance.lastStep()));

            OrderService orderService = new OrderService(bus);
            bus.register("inventory-service", new InventoryService(bus, Set.of("out-of-stock-item")));
            bus.register("order-service", orderService);
            String unpaid = orderService.createOrder("o-1", List.of("book"), 500); // no payment service yet
            transport.drainAll();
            scheduler.advance(Duration.ofSeconds(29));
            assertEquals(List.of(), alerts);
            scheduler.advance(Duration.ofSeconds(1));
            assertEquals(List.of(unpaid + " at inventory-reserved"), alerts);

            bus.register("payment-service", new PaymentService(bus, cardLimit));
            String paid = orderService.createOrder("o-2", List.of("book"), 500);
            transport.drainAll();
            assertEquals("paid", orderService.status("o-2"));
            assertEquals(io.streamsaga.choreography.FlowStatus.SUCCEEDED, tracker.where(paid).orElseThrow().status());
            tracker.close();
        } finally {
            transport.close();
        }
    }

    private final List<String> alerts = new CopyOnWriteArrayList<>();

    private void alert(String correlationId, java.util.Optional<io.streamsaga.choreography.FlowStep> lastStep) {
        alerts.add(correlationId + " at " + lastStep.map(io.streamsaga.choreography.FlowStep::event).orElse("none"));
    }

    // ---- docs/durability.md

    @EventType("order-created")
    record OrderCreated(String orderId, long amount) { }

    private static void insertInvoice(Connection connection, OrderCreated event) throws java.sql.SQLException {
        try (PreparedStatement insert = connection.prepareStatement("insert into invoice (order_id) values (?)")) {
            insert.setString(1, event.orderId());
            insert.executeUpdate();
        }
    }

    @Test
    void durabilitySetUpSnippetRunsOnH2AndTheInboxWritesTheInvoiceOnceForARedeliveredMessage() throws Exception {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl("jdbc:h2:mem:docs-" + UUID.randomUUID() + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH");
        SagaDefinition<OrderSagaSample.OrderData> orderSaga = OrderSagaSample.definition(new OrderSagaSample.Services(false, QUIET));
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler scheduler = new VirtualScheduler();
        DataSource ds = new HikariDataSource(config);              // the application's pool
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                     .build()).scheduler(scheduler).build()) {
            try (Connection c = ds.getConnection(); var s = c.createStatement()) {
                s.execute("create table invoice (order_id varchar(64))");
            }
            JdbcSchema.of(ds).migrate();                               // creates or upgrades the ss_* tables

            SagaOrchestrator sagas = SagaOrchestrator.builder()
                    .store(JdbcSagaStore.builder(ds).lifecycleEventsToOutbox("saga-events").build())
                    .register(orderSaga).build();
            sagas.recover();                                           // resume what a crash left unfinished

            JdbcOutbox outbox = JdbcOutbox.builder(ds).eventBus(bus).build();   // the bus's codec and correlation
            OutboxRelay relay = OutboxRelay.builder(ds).eventBus(bus).build();   // the bus's scheduler and metrics
            relay.start();

            JdbcInbox inbox = JdbcInbox.create(ds, Clock.systemUTC());
            bus.subscribe("billing", "order-created", OrderCreated.class,
                    inbox.handler((event, ctx, connection) -> insertInvoice(connection, event)));

            Message created = Message.builder("order-created").id("m-1").key("o-1").type("order-created").version(1)
                    .payload(new OrderCreated("o-1", 250)).build();
            bus.publish(created);
            bus.publish(created); // sent again: the same message id
            transport.drainAll();
            assertEquals(1, invoices(ds));

            try (Connection c = ds.getConnection()) { // the application's transaction: its rows and the event
                c.setAutoCommit(false);
                outbox.append(c, "order-created", "o-2", new OrderCreated("o-2", 90));
                c.commit();
            }
            SagaResult<OrderSagaSample.OrderData> saga = sagas.start(orderSaga,
                    new OrderSagaSample.OrderData("an", List.of("book"), 2500, null, null, null)).toCompletableFuture().join();
            assertTrue(saga.isCompleted());
            relay.relayPending(); // what its next poll does, on this thread
            transport.drainAll();
            assertEquals(2, invoices(ds));
            // started, a step-completed per step and completed, written with the transitions and relayed
            assertEquals(java.util.Collections.nCopies(6, "saga-lifecycle"),
                    transport.messages("saga-events").stream().map(m -> m.type()).toList());
            relay.close();
            sagas.close();
        } finally {
            transport.close();
            ((HikariDataSource) ds).close();
        }
    }

    private static int invoices(DataSource ds) throws java.sql.SQLException {
        try (Connection c = ds.getConnection(); var s = c.createStatement(); var rows = s.executeQuery("select count(*) from invoice")) {
            rows.next();
            return rows.getInt(1);
        }
    }

    // ---- docs/kafka.md: compiled only, it needs a broker (KafkaOrderSagaSampleTest runs one)

    @SuppressWarnings("unused")
    private static void kafkaSnippet(TypeRegistry types, OrderCreated order, List<String> payments) {
        KafkaTransport kafka = KafkaTransport.builder()
                .bootstrapServers("localhost:9092")
                .build();
        EventBus bus = EventBus.builder(kafka).types(types).build();
        bus.subscribe("payment-service", "order-created", OrderCreated.class, (created, ctx) -> payments.add(created.orderId()));
        bus.publish("order-created", order.orderId(), order);
    }

    // ---- docs/patterns.md, the aggregator

    record Created(String orderId) { }

    record Paid(String orderId) { }

    record Reserved(String orderId) { }

    @Test
    void aggregatorSnippetReleasesTheOrderOnceItsThreePartsArrived() {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AggregationStore store = new InMemoryAggregationStore();
        List<String> completed = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder()
                .register("order-created", 1, Created.class).register("payment-processed", 1, Paid.class)
                .register("inventory-reserved", 1, Reserved.class).build()).scheduler(scheduler).build()) {
            EventAggregator.builder(bus, store)
                    .name("order-aggregator")                       // stable, stored with every group
                    .correlateByField("orderId")                    // or correlateBy(message -> ...); default: sequence-id, else correlation-id
                    .completeWhen(g -> g.hasTypes("order-created", "payment-processed", "inventory-reserved"))
                    .timeout(Duration.ofMinutes(15), TimeoutPolicy.DEAD_LETTER)
                    .onRelease(aggregate -> completed.add(aggregate.key()))
                    .build()
                    .subscribe("order-aggregator", "order-created", "payment-processed", "inventory-reserved");
            bus.publish("order-created", "o-1", new Created("o-1"));
            bus.publish("payment-processed", "o-1", new Paid("o-1"));
            transport.drainAll();
            assertEquals(List.of(), completed);
            bus.publish("inventory-reserved", "o-1", new Reserved("o-1"));
            transport.drainAll();
            assertEquals(List.of("o-1"), completed);
        } finally {
            transport.close();
        }
    }
}
