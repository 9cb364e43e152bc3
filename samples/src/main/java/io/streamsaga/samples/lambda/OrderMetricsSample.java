package io.streamsaga.samples.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.BatchView;
import io.streamsaga.lambda.ServingLayer;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Lambda architecture for order metrics (number of orders and total amount per day): a batch layer
 * recomputed from the whole log now and then (the source's daily job), a speed layer updated per event,
 * and a serving layer that merges them without double counting. At random moments the merged answer is
 * compared with a full recount of the log it covers.
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.lambda.OrderMetricsSample}.
 */
public final class OrderMetricsSample {

    public record OrderPlaced(String orderId, LocalDate day, long amount) {
    }

    /** Count and total of one day. */
    public record DayStats(long count, long total) {
        DayStats plus(DayStats other) {
            return new DayStats(count + other.count, total + other.total);
        }
    }

    /** The view: stats per day, immutable. */
    public record DailyMetrics(Map<LocalDate, DayStats> days) {
        public DailyMetrics {
            days = Collections.unmodifiableMap(new TreeMap<>(days));
        }

        static DailyMetrics empty() {
            return new DailyMetrics(Map.of());
        }

        DailyMetrics add(OrderPlaced order) {
            Map<LocalDate, DayStats> next = new TreeMap<>(days);
            next.merge(order.day(), new DayStats(1, order.amount()), DayStats::plus);
            return new DailyMetrics(next);
        }

        /** The application's merge: add the two views day by day. */
        DailyMetrics merge(DailyMetrics realtime) {
            Map<LocalDate, DayStats> next = new TreeMap<>(days);
            realtime.days().forEach((day, stats) -> next.merge(day, stats, DayStats::plus));
            return new DailyMetrics(next);
        }
    }

    /** One comparison of the merged view with a recount. */
    public record Check(int step, boolean equal, DailyMetrics merged, DailyMetrics recount) {
    }

    /** What a run produced. */
    public record Result(List<Check> checks, int batchRuns, DailyMetrics finalView, Map<Integer, Long> lastBatchCovers) {
    }

    private OrderMetricsSample() {
    }

    public static Result run(long seed, int steps) {
        Random random = new Random(seed);
        InMemoryTransport transport = InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build();
        List<Check> checks = new ArrayList<>();
        List<Map.Entry<RecordPosition, OrderPlaced>> log = new ArrayList<>();
        int batchRuns = 0;
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class).build())
                .scheduler(new VirtualScheduler()).build();
             ServingLayer<OrderPlaced, DailyMetrics> serving = ServingLayer.builder(bus, "order-metrics", "orders", OrderPlaced.class)
                     .view(DailyMetrics::empty, DailyMetrics::add)
                     .merge(DailyMetrics::merge)
                     .build().start()) {
            LocalDate firstDay = LocalDate.of(2024, 5, 1);
            for (int step = 0; step < steps; step++) {
                int action = random.nextInt(20);
                if (action < 12) {
                    OrderPlaced order = new OrderPlaced("o-" + step, firstDay.plusDays(random.nextInt(4)), 10 + random.nextInt(990));
                    RecordPosition position = bus.publish("orders", order.orderId(), order).toCompletableFuture().join();
                    log.add(Map.entry(position, order));
                } else if (action < 15) {
                    transport.drainAll();
                } else if (action < 17) {
                    serving.recomputeBatch(); // the "daily job"; finishes at the next delivery
                    batchRuns++;
                } else {
                    checks.add(check(step, serving, log));
                }
            }
            transport.drainAll();
            checks.add(check(steps, serving, log));
            return new Result(checks, batchRuns, serving.query(), serving.batchView().covers());
        } finally {
            transport.close();
        }
    }

    /** Merged view against a recount of exactly the events it covers. */
    private static Check check(int step, ServingLayer<OrderPlaced, DailyMetrics> serving,
                               List<Map.Entry<RecordPosition, OrderPlaced>> log) {
        ServingLayer.Answer<DailyMetrics> answer = serving.answer();
        DailyMetrics merged = answer.view();
        Map<Integer, Long> position = answer.position();
        DailyMetrics recount = DailyMetrics.empty();
        for (Map.Entry<RecordPosition, OrderPlaced> entry : log) {
            if (entry.getKey().offset() < position.getOrDefault(entry.getKey().partition(), 0L)) {
                recount = recount.add(entry.getValue());
            }
        }
        return new Check(step, merged.equals(recount), merged, recount);
    }

    public static void main(String[] args) {
        Result result = run(42L, 300);
        long agreeing = result.checks().stream().filter(Check::equal).count();
        System.out.println(result.batchRuns() + " batch recomputes; last batch covers offsets " + result.lastBatchCovers());
        System.out.println(agreeing + " of " + result.checks().size() + " checks: merged view == full recount");
        result.finalView().days().forEach((day, stats) ->
                System.out.println("  " + day + ": " + stats.count() + " orders, total " + stats.total()));
    }
}
