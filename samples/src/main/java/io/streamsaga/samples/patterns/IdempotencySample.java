package io.streamsaga.samples.patterns;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.idempotency.IdempotentProducer;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.message.Message;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Idempotent producer and consumer: the producer sends the same order twice and it is published once; the
 * broker then redelivers a message (at-least-once) and the wrapped consumer charges the card once.
 *
 * <pre>mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.patterns.IdempotencySample</pre>
 */
public final class IdempotencySample {
    /** The event. */
    public record OrderCreated(String orderId, long amountCents) {
    }

    /** What happened. */
    public record Result(int published, int skippedSends, List<String> charged, long duplicatesCounted) {
    }

    private IdempotencySample() {
    }

    public static void main(String[] args) {
        run(System.out);
    }

    public static Result run(PrintStream out) {
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        InMemoryMetrics metrics = new InMemoryMetrics();
        try (EventBus bus = EventBus.builder(transport).metrics(metrics)
                .types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class).build())
                .scheduler(scheduler).build()) {
            InMemoryDeduplicationStore sent = InMemoryDeduplicationStore.builder().name("producer").metrics(metrics)
                    .window(Duration.ofDays(7)).maxEntries(100_000).build();
            InMemoryDeduplicationStore processed = InMemoryDeduplicationStore.builder().name("payment").metrics(metrics)
                    .window(Duration.ofDays(7)).maxEntries(100_000).build();
            IdempotentProducer producer = IdempotentProducer.builder(bus, sent).build();
            IdempotentConsumer consumer = IdempotentConsumer.builder(bus, processed).lease(Duration.ofMinutes(1)).build();

            List<String> charged = new ArrayList<>();
            bus.subscribe("payment", "order-created", OrderCreated.class, consumer.wrap((order, ctx) -> {
                charged.add(order.orderId());
                out.printf("payment: charged %d cents for %s (message %s...)%n", order.amountCents(), order.orderId(),
                        ctx.message().id().substring(0, 12));
            }));

            int skipped = 0;
            for (int i = 1; i <= 2; i++) {
                var result = producer.send("order-created", "o-1", new OrderCreated("o-1", 4_200)).toCompletableFuture().join();
                out.printf("producer: send #%d of o-1 -> id %s... %s%n", i, result.messageId().substring(0, 12),
                        result.skipped() ? "skipped (already sent)" : "published");
                skipped += result.skipped() ? 1 : 0;
            }
            transport.drainAll();

            // The broker redelivers the message (a consumer crashed before committing its offset).
            Message redelivered = transport.messages("order-created").get(0);
            out.println("broker: redelivering " + redelivered.id().substring(0, 12) + "...");
            bus.publish(redelivered);
            transport.drainAll();

            int published = transport.messages("order-created").size() - 1;
            long duplicates = metrics.counter(IdempotentConsumer.DUPLICATES_METRIC);
            out.printf("result: %d published, %d duplicate send(s) skipped, card charged %d time(s); %s = %d%n",
                    published, skipped, charged.size(), IdempotentConsumer.DUPLICATES_METRIC, duplicates);
            return new Result(published, skipped, charged, duplicates);
        } finally {
            transport.close();
        }
    }
}
