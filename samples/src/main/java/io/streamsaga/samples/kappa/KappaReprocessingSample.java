package io.streamsaga.samples.kappa;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.cqrs.Projection;
import io.streamsaga.cqrs.ProjectionDefinition;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.kappa.ReplayProgress;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Kappa: one stream pipeline, and reprocessing by replay. Version 1 of a revenue projection forgets
 * discounts; version 2 fixes it and is reprocessed from the beginning of the log under a new consumer
 * group, with progress reported against the end offsets, while version 1 keeps answering; then queries
 * switch to version 2.
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.kappa.KappaReprocessingSample}.
 */
public final class KappaReprocessingSample {

    public record OrderPlaced(String orderId, String customer, long amount, long discount) {
    }

    /** Revenue per customer. */
    public static final class Revenue {
        final Map<String, AtomicLong> byCustomer = new ConcurrentHashMap<>();

        void add(String customer, long value) {
            byCustomer.computeIfAbsent(customer, c -> new AtomicLong()).addAndGet(value);
        }

        public long of(String customer) {
            AtomicLong value = byCustomer.get(customer);
            return value == null ? 0 : value.get();
        }
    }

    static ProjectionDefinition<Revenue> v1() {
        return ProjectionDefinition.builder(Revenue::new)
                .on("orders", OrderPlaced.class, (model, e, ctx) -> model.add(e.customer(), e.amount())) // bug: no discount
                .build();
    }

    static ProjectionDefinition<Revenue> v2() {
        return ProjectionDefinition.builder(Revenue::new)
                .on("orders", OrderPlaced.class, (model, e, ctx) -> model.add(e.customer(), e.amount() - e.discount()))
                .build();
    }

    /** What a run produced. */
    public record Result(long revenueV1, long revenueDuringReplay, List<String> progressReports, long revenueAfterSwap,
                         int versionAfterSwap) {
    }

    private KappaReprocessingSample() {
    }

    public static Result run() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(2).deliveryMode(DeliveryMode.MANUAL).build();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class).build())
                .scheduler(new VirtualScheduler()).build();
             Projection<Revenue> revenue = Projection.<Revenue>create(bus, "revenue").start(v1())) {
            for (int i = 0; i < 10; i++) {
                bus.publish("orders", "o-" + i, new OrderPlaced("o-" + i, i % 2 == 0 ? "acme" : "globex", 100, 10));
            }
            transport.drainAll();
            long v1 = revenue.readModel().of("acme");

            Projection.Rebuild<Revenue> rebuild = revenue.rebuild(v2());
            List<String> progress = new ArrayList<>();
            progress.add(rebuild.progress().toString());
            // manual delivery: nothing is replayed until the drain, so version 1 still answers here
            long during = revenue.readModel().of("acme");
            transport.drainAll();
            ReplayProgress done = rebuild.progress();
            progress.add(done.toString());
            return new Result(v1, during, progress, revenue.readModel().of("acme"), revenue.version());
        } finally {
            transport.close();
        }
    }

    public static void main(String[] args) {
        Result result = run();
        System.out.println("version 1 says acme's revenue is " + result.revenueV1() + " (discounts forgotten)");
        System.out.println("reprocessing as version 2 from the beginning of the log; version 1 still answers "
                + result.revenueDuringReplay());
        result.progressReports().forEach(p -> System.out.println("  progress " + p));
        System.out.println("switched to version " + result.versionAfterSwap() + ": acme's revenue is " + result.revenueAfterSwap());
    }
}
