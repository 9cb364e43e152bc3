package io.streamsaga.samples.patterns;

import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.message.Message;
import io.streamsaga.splitter.EventSplitter;
import io.streamsaga.splitter.SequenceInfo;
import io.streamsaga.splitter.SplitPart;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Event splitter: an {@code order-created} is split into one {@code order-item-created} per item and an
 * {@code order-summary-created}, each with sequence headers; an aggregator puts them back together.
 * With {@code --stream} the items are emitted as a stream whose length is unknown until the end, so only
 * the last part carries the size.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.patterns.SplitterSample -Dexec.args="--stream"</pre>
 */
public final class SplitterSample {
    /** One line of an order. */
    public record Item(String itemId, String product, int quantity) {
    }

    /** Event {@code order-created}, the whole to split. */
    public record OrderCreated(String id, long amount, List<Item> items) {
    }

    /** Event {@code order-item-created}, one per item. */
    public record OrderItemCreated(String orderId, String itemId, String product, int quantity) {
    }

    /** Event {@code order-summary-created}, the last part. */
    public record OrderSummaryCreated(String orderId, int itemCount, long totalAmount) {
    }

    /** What happened: the headers of each part, and how many items the aggregator got back. */
    public record Result(List<SequenceInfo> parts, int reassembledItems) {
    }

    private SplitterSample() {
    }

    public static void main(String[] args) {
        run(Arrays.asList(args).contains("--stream"), System.out);
    }

    public static Result run(boolean stream, PrintStream out) {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder()
                        .register("order-created", 1, OrderCreated.class)
                        .register("order-item-created", 1, OrderItemCreated.class)
                        .register("order-summary-created", 1, OrderSummaryCreated.class).build())
                .scheduler(new VirtualScheduler()).build()) {
            EventSplitter splitter = EventSplitter.of(bus);
            // The source's splitOrder: one event per item, then the summary.
            bus.subscribe("order-splitter", "order-created", OrderCreated.class, (order, ctx) -> {
                List<SplitPart> parts = new ArrayList<>();
                for (Item item : order.items()) {
                    parts.add(new SplitPart("order-item-created", order.id(),
                            new OrderItemCreated(order.id(), item.itemId(), item.product(), item.quantity())));
                }
                parts.add(new SplitPart("order-summary-created", order.id(),
                        new OrderSummaryCreated(order.id(), order.items().size(), order.amount())));
                (stream ? splitter.split(order.id(), parts.iterator()) : splitter.split(order.id(), parts))
                        .toCompletableFuture().join();
            });

            List<SequenceInfo> seen = new ArrayList<>();
            bus.subscribe("audit", "order-*", Message.class, (message, ctx) -> SequenceInfo.of(message).ifPresent(info -> {
                seen.add(info);
                out.printf("part on %-22s sequence-id=%s number=%d size=%s last=%s correlation=%s%n", message.topic(),
                        info.sequenceId(), info.number(), info.size().isPresent() ? info.size().getAsInt() : "?",
                        info.last(), message.correlationId().orElse("-"));
            }));

            List<Aggregate> reassembled = new ArrayList<>();
            EventAggregator.builder(bus, new InMemoryAggregationStore()).name("order-reassembly")
                    .completeOnSequenceEnd()
                    .onRelease(aggregate -> {
                        reassembled.add(aggregate);
                        out.printf("aggregator: order %s complete again with %d item(s)%n", aggregate.key(),
                                aggregate.events(OrderItemCreated.class).size());
                    })
                    .build()
                    .subscribe("reassembly", "order-item-created", "order-summary-created");

            bus.publish("order-created", "o-7", new OrderCreated("o-7", 9_900, List.of(
                    new Item("i-1", "keyboard", 1), new Item("i-2", "mouse", 2), new Item("i-3", "cable", 3))));
            transport.drainAll();
            int items = reassembled.isEmpty() ? 0 : reassembled.get(0).events(OrderItemCreated.class).size();
            return new Result(seen, items);
        } finally {
            transport.close();
        }
    }
}
