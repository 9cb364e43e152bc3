package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.metrics.MeterNames;
import io.streamsaga.metrics.MetricsRecorder;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A {@link MetricsRecorder} that keeps every number in memory, for tests and samples: events processed,
 * failed (by error type) and dead-lettered (by reason) per topic and consumer group, handling latency
 * samples, saga starts and outcomes, named counters with tags, and named distributions with tags
 * ({@link #observe}, read as {@link #observations}).
 *
 * <p>Latency samples and observed values are bounded ({@link #DEFAULT_MAX_SAMPLES} per topic and group, and per
 * distribution, by default, the oldest dropped first) so a long-running sample does not grow without limit; the
 * counters, and a distribution's count, sum and maximum, are exact.
 * A null topic, group, error type, reason, saga name, outcome or tag value is recorded (and read) as
 * {@value #NONE}, as {@code MicrometerMetricsRecorder} records it, so a test counts what production counts; a null
 * latency or saga duration is counted without a sample, as there; a null counter or distribution name or tag name is
 * refused with a {@link NullPointerException} naming it, an observed value that is NaN, infinite or negative with
 * an {@link IllegalArgumentException} quoting it, and a name of {@link #increment} or {@link #observe} whose Prometheus
 * name a counter or distribution of another kind or name, or one of the library's meters, has already (whatever the
 * tags: {@link MeterNames}) with an {@link IllegalArgumentException} naming both, as there too.
 * Thread-safe: the bus calls it from its consumer threads while a test reads it. {@link #reset()} and a recording are
 * atomic to each other: reset() waits for the recordings under way, so a value is forgotten exactly when its
 * recording returned before reset() did.
 *
 * <p>Every tag set recorded of a counter or distribution is kept, with its count, until {@link #reset()}: no bound,
 * as a registry keeps a meter per tag set, because a test reads them all back; a test that records tags of unbounded
 * values (a message id, say) grows it with each, as it would a production registry, and should reset it or not do
 * that.
 */
public final class InMemoryMetrics implements MetricsRecorder {
    /** Latency samples kept per topic and group unless configured otherwise. */
    public static final int DEFAULT_MAX_SAMPLES = 10_000;
    /** What a null topic, group, error type, reason, saga name, outcome or tag value is recorded as. */
    public static final String NONE = "none";

    /** A topic and consumer group, the key of the event counters; a null one is {@value #NONE}. */
    public record TopicGroup(String topic, String group) {
        public TopicGroup {
            topic = orNone(topic);
            group = orNone(group);
        }
    }

    /**
     * A named counter with its tags, as {@link #increment(String, Map)} receives it: null tags are none, a null tag
     * value is {@value #NONE}.
     *
     * @throws NullPointerException when the name or a tag name is null
     */
    public record CounterKey(String name, Map<String, String> tags) {
        public CounterKey {
            Objects.requireNonNull(name, "name");
            tags = normalised("counter", name, tags);
        }
    }

    /**
     * What {@link #observe} recorded of one distribution with one set of tags: the number of values, their sum and the
     * largest (exact, 0 when none was observed), and the newest values kept, oldest first (at most the recorder's
     * {@code maxSamples}).
     */
    public record Observations(long count, double sum, double max, List<Double> values) {
        /** Nothing observed. */
        public static final Observations EMPTY = new Observations(0, 0, 0, List.of());

        public Observations {
            values = List.copyOf(values);
        }
    }

    /** A distribution with its tags, normalised as a {@link CounterKey}. */
    private record DistributionKey(String name, Map<String, String> tags) {
        DistributionKey {
            Objects.requireNonNull(name, "name");
            tags = normalised("distribution", name, tags);
        }
    }

    private final int maxSamples;
    private final Map<TopicGroup, LongAdder> processed = new ConcurrentHashMap<>();
    private final Map<TopicGroup, Map<String, LongAdder>> failed = new ConcurrentHashMap<>();
    private final Map<TopicGroup, Map<String, LongAdder>> deadLettered = new ConcurrentHashMap<>();
    private final Map<TopicGroup, Samples> latencies = new ConcurrentHashMap<>();
    private final Map<String, LongAdder> sagasStarted = new ConcurrentHashMap<>();
    private final Map<String, Map<String, LongAdder>> sagasFinished = new ConcurrentHashMap<>();
    private final Map<String, Samples> sagaDurations = new ConcurrentHashMap<>();
    private final Map<CounterKey, LongAdder> counters = new ConcurrentHashMap<>();
    private final Map<DistributionKey, Distribution> distributions = new ConcurrentHashMap<>();
    /** The names of {@link #increment} and {@link #observe}, claimed as a registry would; kept by reset. */
    private final MeterNames names = new MeterNames();
    /**
     * Shared by the recordings, exclusive to {@link #reset()}: a recording takes its counter from a table and adds to it
     * after, so a reset clearing the table between the two lost the value (and could clear one table after a
     * recording and another before the same thread's next recording).
     */
    private final ReadWriteLock resetLock = new ReentrantReadWriteLock();

    /** A recorder keeping {@link #DEFAULT_MAX_SAMPLES} latency samples per topic and group. */
    public InMemoryMetrics() {
        this(DEFAULT_MAX_SAMPLES);
    }

    /**
     * A recorder keeping at most {@code maxSamples} latency samples per topic and group (and per saga), and observed
     * values per distribution.
     */
    public InMemoryMetrics(int maxSamples) {
        ConfigurationException.require(maxSamples >= 1, "maxSamples must be 1 or more, but was %s", maxSamples);
        this.maxSamples = maxSamples;
    }

    // ---- recording (called by the bus and the engines) ----

    @Override
    public void eventProcessed(String topic, String group, Duration latency) {
        TopicGroup key = new TopicGroup(topic, group);
        recording(() -> {
            processed.computeIfAbsent(key, k -> new LongAdder()).increment();
            if (latency != null) { // one the caller could not measure: counted, without a sample
                latencies.computeIfAbsent(key, k -> new Samples(maxSamples)).add(latency);
            }
        });
    }

    @Override
    public void eventFailed(String topic, String group, String errorType) {
        TopicGroup key = new TopicGroup(topic, group);
        recording(() -> bump(failed, key, errorType));
    }

    @Override
    public void eventDeadLettered(String topic, String group, String reason) {
        TopicGroup key = new TopicGroup(topic, group);
        recording(() -> bump(deadLettered, key, reason));
    }

    @Override
    public void sagaStarted(String sagaName) {
        recording(() -> sagasStarted.computeIfAbsent(orNone(sagaName), k -> new LongAdder()).increment());
    }

    @Override
    public void sagaFinished(String sagaName, String outcome, Duration duration) {
        recording(() -> {
            bump(sagasFinished, orNone(sagaName), outcome);
            if (duration != null) { // one the caller could not measure: counted, without a sample
                sagaDurations.computeIfAbsent(orNone(sagaName), k -> new Samples(maxSamples)).add(duration);
            }
        });
    }

    @Override
    public void increment(String name, Map<String, String> tags) {
        CounterKey key = new CounterKey(name, tags);
        recording(() -> counters.computeIfAbsent(key, k -> {
            names.claimCounter(name);
            return new LongAdder();
        }).increment());
    }

    @Override
    public void observe(String name, double value, Map<String, String> tags) {
        DistributionKey key = new DistributionKey(name, tags);
        MeterNames.requireObservable(name, value); // as MicrometerMetricsRecorder refuses it
        recording(() -> distributions.computeIfAbsent(key, k -> {
            names.claimDistribution(name);
            return new Distribution(maxSamples);
        }).add(value));
    }

    /** Runs {@code write}, a recording, with no {@link #reset()} under way. */
    private void recording(Runnable write) {
        resetLock.readLock().lock();
        try {
            write.run();
        } finally {
            resetLock.readLock().unlock();
        }
    }

    private static <K> void bump(Map<K, Map<String, LongAdder>> table, K key, String detail) {
        table.computeIfAbsent(key, k -> new ConcurrentHashMap<>())
                .computeIfAbsent(orNone(detail), d -> new LongAdder()).increment();
    }

    // ---- reading ----

    /** Events handled successfully on {@code topic} by {@code group}. */
    public long processed(String topic, String group) {
        return sum(processed.get(new TopicGroup(topic, group)));
    }

    /** Events handled successfully on {@code topic}, over all groups. */
    public long processed(String topic) {
        long total = 0;
        for (Map.Entry<TopicGroup, LongAdder> entry : processed.entrySet()) {
            if (entry.getKey().topic().equals(orNone(topic))) {
                total += entry.getValue().sum();
            }
        }
        return total;
    }

    /** Failed handling attempts on {@code topic} by {@code group}, all error types. */
    public long failed(String topic, String group) {
        return total(failed.get(new TopicGroup(topic, group)));
    }

    /** Failed handling attempts on {@code topic} by {@code group} with errors of {@code errorType} (simple class name). */
    public long failed(String topic, String group, String errorType) {
        Map<String, LongAdder> byType = failed.get(new TopicGroup(topic, group));
        return byType == null ? 0 : sum(byType.get(orNone(errorType)));
    }

    /** Failed attempts by error type, over every topic and group. */
    public Map<String, Long> failuresByErrorType() {
        return flatten(failed);
    }

    /** Messages of {@code topic} that {@code group} dead-lettered, all reasons. */
    public long deadLettered(String topic, String group) {
        return total(deadLettered.get(new TopicGroup(topic, group)));
    }

    /** Messages of {@code topic} that {@code group} dead-lettered for {@code reason} ({@code handler-failed}, {@code undecodable}...). */
    public long deadLettered(String topic, String group, String reason) {
        Map<String, LongAdder> byReason = deadLettered.get(new TopicGroup(topic, group));
        return byReason == null ? 0 : sum(byReason.get(orNone(reason)));
    }

    /** Dead letters by reason, over every topic and group. */
    public Map<String, Long> deadLettersByReason() {
        return flatten(deadLettered);
    }

    /** The kept handling-latency samples of {@code topic} and {@code group}, oldest first. */
    public List<Duration> latencies(String topic, String group) {
        Samples samples = latencies.get(new TopicGroup(topic, group));
        return samples == null ? List.of() : samples.snapshot();
    }

    /** The largest kept latency sample of {@code topic} and {@code group}, or zero. */
    public Duration maxLatency(String topic, String group) {
        return latencies(topic, group).stream().max(Duration::compareTo).orElse(Duration.ZERO);
    }

    /** Saga instances of {@code sagaName} started. */
    public long sagasStarted(String sagaName) {
        return sum(sagasStarted.get(orNone(sagaName)));
    }

    /** Saga instances of {@code sagaName} that finished with {@code outcome}. */
    public long sagasFinished(String sagaName, String outcome) {
        Map<String, LongAdder> byOutcome = sagasFinished.get(orNone(sagaName));
        return byOutcome == null ? 0 : sum(byOutcome.get(orNone(outcome)));
    }

    /** The kept durations of finished {@code sagaName} instances, oldest first. */
    public List<Duration> sagaDurations(String sagaName) {
        Samples samples = sagaDurations.get(orNone(sagaName));
        return samples == null ? List.of() : samples.snapshot();
    }

    /** The named counter with exactly these tags. */
    public long counter(String name, Map<String, String> tags) {
        return sum(counters.get(new CounterKey(name, tags)));
    }

    /** The named counter summed over all its tag sets. */
    public long counter(String name) {
        long total = 0;
        for (Map.Entry<CounterKey, LongAdder> entry : counters.entrySet()) {
            if (entry.getKey().name().equals(name)) {
                total += entry.getValue().sum();
            }
        }
        return total;
    }

    /** What was observed of the named distribution with exactly these tags ({@link Observations#EMPTY} if nothing). */
    public Observations observations(String name, Map<String, String> tags) {
        Distribution distribution = distributions.get(new DistributionKey(name, tags));
        return distribution == null ? Observations.EMPTY : distribution.snapshot();
    }

    /**
     * Forgets everything recorded so far; a name of {@link #increment} or {@link #observe} stays claimed by its counter or
     * distribution, as a registry keeps its meters. Waits for the recordings under way, which it forgets too.
     */
    public void reset() {
        resetLock.writeLock().lock();
        try {
            clear();
        } finally {
            resetLock.writeLock().unlock();
        }
    }

    private void clear() {
        processed.clear();
        failed.clear();
        deadLettered.clear();
        latencies.clear();
        sagasStarted.clear();
        sagasFinished.clear();
        sagaDurations.clear();
        counters.clear();
        distributions.clear();
    }

    /**
     * A readable multi-line report in the names of the source's Prometheus metrics
     * ({@code events_processed_total}, {@code events_failed_total}, {@code event_latency_ms}...), sorted,
     * for samples and test failure messages.
     */
    public String report() {
        List<String> lines = new ArrayList<>();
        new TreeMap<>(stringKeys(processed)).forEach((key, count) -> lines.add("events_processed_total{" + key + "} " + count));
        failed.forEach((key, byType) -> byType.forEach((type, count) ->
                lines.add("events_failed_total{" + label(key) + ",error_type=" + type + "} " + count.sum())));
        deadLettered.forEach((key, byReason) -> byReason.forEach((reason, count) ->
                lines.add("events_dead_lettered_total{" + label(key) + ",reason=" + reason + "} " + count.sum())));
        latencies.forEach((key, samples) -> {
            List<Duration> kept = samples.snapshot();
            double maxMs = kept.stream().mapToLong(Duration::toNanos).max().orElse(0) / 1_000_000.0;
            lines.add(String.format(Locale.ROOT, "event_latency_ms_max{%s} %.3f", label(key), maxMs));
        });
        sagasStarted.forEach((name, count) -> lines.add("sagas_started_total{saga=" + name + "} " + count.sum()));
        sagasFinished.forEach((name, byOutcome) -> byOutcome.forEach((outcome, count) ->
                lines.add("sagas_finished_total{saga=" + name + ",outcome=" + outcome + "} " + count.sum())));
        counters.forEach((key, count) -> lines.add(key.name() + new TreeMap<>(key.tags()) + " " + count.sum()));
        distributions.forEach((key, distribution) -> {
            Observations observed = distribution.snapshot();
            String tags = new TreeMap<>(key.tags()) + " ";
            lines.add(key.name() + "_count" + tags + observed.count());
            lines.add(key.name() + "_sum" + tags + plain(observed.sum()));
            lines.add(key.name() + "_max" + tags + plain(observed.max()));
        });
        Collections.sort(lines);
        return String.join(System.lineSeparator(), lines);
    }

    private static Map<String, Long> stringKeys(Map<TopicGroup, LongAdder> table) {
        Map<String, Long> out = new TreeMap<>();
        table.forEach((key, count) -> out.put(label(key), count.sum()));
        return out;
    }

    private static String label(TopicGroup key) {
        return "topic=" + key.topic() + ",group=" + key.group();
    }

    private static Map<String, Long> flatten(Map<TopicGroup, Map<String, LongAdder>> table) {
        Map<String, Long> out = new TreeMap<>();
        table.values().forEach(byDetail -> byDetail.forEach((detail, count) -> out.merge(detail, count.sum(), Long::sum)));
        return out;
    }

    /** {@code value} without an exponent or a trailing {@code .0}: 137490, 12.5. */
    private static String plain(double value) {
        return BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
    }

    /**
     * {@code tags} as a key holds them: null tags as none, a null value as {@value #NONE}; a null tag name is refused,
     * naming the {@code kind} and {@code name}.
     */
    private static Map<String, String> normalised(String kind, String name, Map<String, String> tags) {
        if (tags == null || tags.isEmpty()) {
            return Map.of();
        }
        Map<String, String> copy = new HashMap<>(tags.size() * 2);
        for (Map.Entry<String, String> tag : tags.entrySet()) {
            if (tag.getKey() == null) {
                throw new NullPointerException(kind + " " + name + " has a tag with a null name (tags " + tags + ")");
            }
            copy.put(tag.getKey(), orNone(tag.getValue()));
        }
        return Map.copyOf(copy);
    }

    private static String orNone(String value) {
        return value == null ? NONE : value;
    }

    private static long sum(LongAdder adder) {
        return adder == null ? 0 : adder.sum();
    }

    private static long total(Map<String, LongAdder> byDetail) {
        if (byDetail == null) {
            return 0;
        }
        long total = 0;
        for (LongAdder adder : byDetail.values()) {
            total += adder.sum();
        }
        return total;
    }

    /**
     * A distribution: its exact count, sum and maximum, and its newest {@code max} values. One lock, so that a reading
     * is whole (a count and a sum of the same values); the library never calls {@link #observe} on its delivery path.
     */
    private static final class Distribution {
        private final int maxValues;
        private final ArrayDeque<Double> values = new ArrayDeque<>();
        private long count;
        private double sum;
        private double max;

        Distribution(int maxValues) {
            this.maxValues = maxValues;
        }

        synchronized void add(double value) {
            count++;
            sum += value;
            max = Math.max(max, value);
            if (values.size() == maxValues) {
                values.pollFirst();
            }
            values.addLast(value);
        }

        synchronized Observations snapshot() {
            return new Observations(count, sum, max, List.copyOf(values));
        }
    }

    /** A bounded window of durations: the newest {@code max} kept. */
    private static final class Samples {
        private final int max;
        private final ConcurrentLinkedDeque<Duration> values = new ConcurrentLinkedDeque<>();
        private final AtomicInteger size = new AtomicInteger();

        Samples(int max) {
            this.max = max;
        }

        void add(Duration value) {
            values.addLast(value);
            if (size.incrementAndGet() > max && values.pollFirst() != null) {
                size.decrementAndGet();
            }
        }

        List<Duration> snapshot() {
            return List.copyOf(values);
        }
    }
}
