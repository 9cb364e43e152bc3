package io.streamsaga.samples.cqrs;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Command;
import io.streamsaga.cqrs.CommandBus;
import io.streamsaga.cqrs.CommandHandler;
import io.streamsaga.cqrs.CommandResult;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.cqrs.Query;
import io.streamsaga.cqrs.QueryBus;
import io.streamsaga.cqrs.Violation;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The source's CQRS orders: {@code CreateOrderCommand} validated and executed on the write side, which
 * publishes {@code order-created}; an {@code OrderProjection} denormalising it (the user's name copied in)
 * into a read model; {@code GetOrdersQuery} answered from that read model; then a rebuild of the
 * projection from the log while queries keep being answered.
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.cqrs.CqrsOrdersSample}.
 */
public final class CqrsOrdersSample {

    public record CreateOrderCommand(String userId, long amount) implements Command<String> {
    }

    public record GetOrdersQuery(String userId, String status) implements Query<List<OrderView>> {
    }

    public record OrderCreatedEvent(String orderId, String userId, long amount, Instant timestamp) {
    }

    /** A row of the read model: denormalised, ready to show. */
    public record OrderView(String orderId, String userId, String userName, String status, long amount, Instant createdAt) {
    }

    /** The read model: thread-safe, read by queries while the projection writes. */
    public static final class OrderReadModel {
        private final Map<String, OrderView> rows = new ConcurrentHashMap<>();

        void insert(OrderView row) {
            rows.put(row.orderId(), row);
        }

        public List<OrderView> find(String userId, String status) {
            return rows.values().stream()
                    .filter(r -> r.userId().equals(userId) && (status == null || r.status().equals(status)))
                    .sorted(Comparator.comparing(OrderView::orderId)).toList();
        }

        public int size() {
            return rows.size();
        }
    }

    /** The write side's handler: validate, save, publish. */
    static final class CreateOrderHandler implements CommandHandler<CreateOrderCommand, String> {
        private final EventBus bus;
        private final Map<String, Long> orderRepository = new ConcurrentHashMap<>();
        private final AtomicInteger ids = new AtomicInteger();

        CreateOrderHandler(EventBus bus) {
            this.bus = bus;
        }

        @Override
        public List<Violation> validate(CreateOrderCommand command) {
            List<Violation> violations = new ArrayList<>();
            if (!USERS.containsKey(command.userId())) {
                violations.add(Violation.of("userId", "unknown user '" + command.userId() + "'"));
            }
            if (command.amount() <= 0) {
                violations.add(Violation.of("amount", "must be positive, but was " + command.amount()));
            }
            return violations;
        }

        @Override
        public String execute(CreateOrderCommand command) {
            String orderId = "ord-" + ids.incrementAndGet();
            orderRepository.put(orderId, command.amount());
            // joined: the command succeeds only once its event is in the log (a failed publish fails the command
            // instead of leaving an order the read side never sees), as docs/architectures.md asks of a command handler
            bus.publish("order-created", orderId, new OrderCreatedEvent(orderId, command.userId(), command.amount(),
                    bus.scheduler().clock().instant())).toCompletableFuture().join();
            return orderId;
        }
    }

    static final Map<String, String> USERS = Map.of("u-1", "Nguyen An", "u-2", "Tran Binh");

    /** The projection: {@code order-created} into a denormalised row. */
    static ProjectionDefinition<OrderReadModel> orderProjection() {
        return ProjectionDefinition.builder(OrderReadModel::new)
                .on("order-created", OrderCreatedEvent.class, (model, event, ctx) -> model.insert(new OrderView(
                        event.orderId(), event.userId(), USERS.get(event.userId()), "created", event.amount(), event.timestamp())))
                .build();
    }

    /** What a run produced. */
    public record Result(List<CommandResult<String>> commandResults, List<OrderView> ordersOfU1,
                         int versionAfterRebuild, int rowsAfterRebuild, List<Integer> sizesSeenDuringRebuild) {
    }

    private CqrsOrdersSample() {
    }

    public static Result run() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreatedEvent.class).build())
                .scheduler(new VirtualScheduler()).build();
             Projection<OrderReadModel> projection = Projection.<OrderReadModel>create(bus, "order-read-model").start(orderProjection())) {
            CommandBus commands = new CommandBus().register(CreateOrderCommand.class, new CreateOrderHandler(bus));
            QueryBus queries = new QueryBus().register(GetOrdersQuery.class,
                    q -> projection.readModel().find(q.userId(), q.status()));

            List<CommandResult<String>> results = new ArrayList<>();
            results.add(commands.send(new CreateOrderCommand("u-1", 250)));
            results.add(commands.send(new CreateOrderCommand("u-2", 90)));
            results.add(commands.send(new CreateOrderCommand("u-1", 40)));
            results.add(commands.send(new CreateOrderCommand("nobody", -3)));
            transport.drainAll();
            List<OrderView> ordersOfU1 = queries.ask(new GetOrdersQuery("u-1", "created"));

            // Rebuild from the log; queries in between are answered by the old read model, whole.
            Projection.Rebuild<OrderReadModel> rebuild = projection.rebuild();
            List<Integer> sizesSeen = new ArrayList<>();
            sizesSeen.add(queries.ask(new GetOrdersQuery("u-1", null)).size());
            transport.drainAll();
            sizesSeen.add(queries.ask(new GetOrdersQuery("u-1", null)).size());
            return new Result(results, ordersOfU1, projection.version(), projection.readModel().size(), sizesSeen);
        } finally {
            transport.close();
        }
    }

    public static void main(String[] args) {
        Result result = run();
        for (CommandResult<String> r : result.commandResults()) {
            if (r instanceof CommandResult.Accepted<String> accepted) {
                System.out.println("accepted: " + accepted.value());
            } else if (r instanceof CommandResult.Rejected<String> rejected) {
                System.out.println("rejected: " + rejected.violations());
            } else if (r instanceof CommandResult.Failed<String> failed) {
                System.out.println("failed: " + failed.error());
            }
        }
        System.out.println("GetOrdersQuery(u-1, created) -> ");
        result.ordersOfU1().forEach(o -> System.out.println("  " + o));
        System.out.println("queries during the rebuild saw " + result.sizesSeenDuringRebuild() + " orders of u-1");
        System.out.println("read model rebuilt from the log as version " + result.versionAfterRebuild()
                + " with " + result.rowsAfterRebuild() + " rows");
    }
}
