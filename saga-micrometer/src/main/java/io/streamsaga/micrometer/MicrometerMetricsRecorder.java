package io.streamsaga.micrometer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.streamsaga.metrics.MeterNames;
import io.streamsaga.metrics.MetricsRecorder;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The core's {@link MetricsRecorder} on a Micrometer {@link MeterRegistry}. Meter names are dotted
 * Micrometer names that a Prometheus registry renders in the source's Prometheus names:
 * <table>
 *   <caption>meters</caption>
 *   <tr><th>Micrometer</th><th>Prometheus</th><th>tags</th></tr>
 *   <tr><td>events.processed</td><td>events_processed_total</td><td>topic, group</td></tr>
 *   <tr><td>event.latency (timer, histogram)</td><td>event_latency_seconds_bucket/_count/_sum</td><td>topic, group</td></tr>
 *   <tr><td>events.failed</td><td>events_failed_total</td><td>topic, group, error_type</td></tr>
 *   <tr><td>events.dead.lettered</td><td>events_dead_lettered_total</td><td>topic, group, reason</td></tr>
 *   <tr><td>saga.started</td><td>saga_started_total</td><td>saga</td></tr>
 *   <tr><td>saga.finished</td><td>saga_finished_total</td><td>saga, outcome</td></tr>
 *   <tr><td>saga.duration (timer, histogram)</td><td>saga_duration_seconds_*</td><td>saga, outcome</td></tr>
 *   <tr><td>pattern counters ({@link #increment})</td><td>{@code <name>_total}</td><td>as given</td></tr>
 *   <tr><td>distributions ({@link #observe}; summary)</td><td>{@code <name>_count/_sum/_max}</td><td>as given</td></tr>
 * </table>
 * Prometheus measures time in seconds, so the source's {@code event_latency_ms} becomes
 * {@code event_latency_seconds}. A distribution is a {@link DistributionSummary} with no buckets: unlike a time, its
 * values (an amount, a size) have no range the library could know, and Micrometer's default percentile histogram for
 * one spans 1 to {@code Long.MAX_VALUE} in 276 buckets, each a series per tag set (a timer's, 1 ms to 30 s, has 69). A
 * {@code MeterFilter} on the registry gives it the buckets that fit (service level objectives, or a percentile
 * histogram with its minimum and maximum expected values). A null tag value (a topic, a reason, a
 * value in {@link #increment}'s or {@link #observe}'s tags) is recorded as {@code none}, as Micrometer refuses a null;
 * null tags there are none, and a null counter or distribution name or tag name is refused with a
 * {@link NullPointerException} naming it (as {@code InMemoryMetrics} does), an observed value that is NaN, infinite or
 * negative with an {@link IllegalArgumentException} quoting it (as there), which registers and records nothing, and a
 * name whose Prometheus name a counter or distribution of another kind or name, or one of the library's meters above,
 * has already, whatever the tags, with one naming both (as there; {@link MeterNames}: a registry keeps one meter to a
 * name, and a Prometheus registry would leave one of the two out of its scrape, saying so once per process). A null
 * latency or saga duration, one the caller could not measure, is counted without a timer sample (as there too). Meters
 * are cached per name and tags, so the delivery path
 * does one map lookup. Thread-safe.
 */
public final class MicrometerMetricsRecorder implements MetricsRecorder {
    /** The tag value a null value is recorded as: one series for every call that could not name it. */
    private static final String NONE = "none";
    private final MeterRegistry registry;
    private final Map<List<String>, Counter> counters = new ConcurrentHashMap<>();
    private final Map<List<String>, Timer> timers = new ConcurrentHashMap<>();
    private final Map<List<String>, DistributionSummary> summaries = new ConcurrentHashMap<>();
    /** The names of {@link #increment} and {@link #observe}, claimed at each one's first series. */
    private final MeterNames names = new MeterNames();

    /** Records into {@code registry}. */
    public MicrometerMetricsRecorder(MeterRegistry registry) {
        this.registry = Objects.requireNonNull(registry, "registry");
    }

    /** The registry written to. */
    public MeterRegistry registry() {
        return registry;
    }

    @Override
    public void eventProcessed(String topic, String group, Duration latency) {
        counter("events.processed", "events processed successfully", "topic", topic, "group", group).increment();
        if (latency != null) { // one the caller could not measure: counted, without a sample
            timer("event.latency", "event latency as the bus reports it", "topic", topic, "group", group).record(latency);
        }
    }

    @Override
    public void eventFailed(String topic, String group, String errorType) {
        counter("events.failed", "handling attempts that threw", "topic", topic, "group", group, "error_type", errorType).increment();
    }

    @Override
    public void eventDeadLettered(String topic, String group, String reason) {
        counter("events.dead.lettered", "events sent to the dead-letter topic", "topic", topic, "group", group, "reason", reason).increment();
    }

    @Override
    public void sagaStarted(String sagaName) {
        counter("saga.started", "saga instances started", "saga", sagaName).increment();
    }

    @Override
    public void sagaFinished(String sagaName, String outcome, Duration duration) {
        counter("saga.finished", "saga instances finished", "saga", sagaName, "outcome", outcome).increment();
        if (duration != null) { // one the caller could not measure: counted, without a sample
            timer("saga.duration", "saga duration from start to its terminal state", "saga", sagaName, "outcome", outcome)
                    .record(duration);
        }
    }

    @Override
    public void increment(String name, Map<String, String> tags) {
        Objects.requireNonNull(name, "name");
        Map<String, String> sorted = sorted("counter", name, tags);
        counters.computeIfAbsent(key(name, sorted), k -> {
            names.claimCounter(name);
            return Counter.builder(name).description("pattern counter " + name).tags(toTags(sorted)).register(registry);
        }).increment();
    }

    @Override
    public void observe(String name, double value, Map<String, String> tags) {
        Objects.requireNonNull(name, "name");
        Map<String, String> sorted = sorted("distribution", name, tags);
        MeterNames.requireObservable(name, value); // DistributionSummary.record would drop it or spoil its sum for good
        summaries.computeIfAbsent(key(name, sorted), k -> {
            names.claimDistribution(name);
            return DistributionSummary.builder(name).description("distribution " + name).tags(toTags(sorted)).register(registry);
        }).record(value);
    }

    /** {@code tags} sorted by name, null tags as none; a null tag name is refused, naming the {@code kind} and name. */
    private static Map<String, String> sorted(String kind, String name, Map<String, String> tags) {
        Map<String, String> sorted = new TreeMap<>();
        if (tags != null) {
            for (Map.Entry<String, String> tag : tags.entrySet()) {
                if (tag.getKey() == null) {
                    // A tag cannot be recorded without its name; leaving it out would merge its series silently.
                    throw new NullPointerException(kind + " " + name + " has a tag with a null name (tags " + tags + ")");
                }
                sorted.put(tag.getKey(), tag.getValue());
            }
        }
        return sorted;
    }

    /** The cache key of a meter of {@code name} with {@code sorted} tags, a null value as {@value #NONE}. */
    private static List<String> key(String name, Map<String, String> sorted) {
        List<String> key = new ArrayList<>(1 + 2 * sorted.size());
        key.add(name);
        sorted.forEach((k, v) -> {
            key.add(k);
            key.add(v == null ? NONE : v);
        });
        return List.copyOf(key);
    }

    private Counter counter(String name, String description, String... tagPairs) {
        return counters.computeIfAbsent(key(name, tagPairs),
                k -> Counter.builder(name).description(description).tags(Tags.of(tagPairs(tagPairs))).register(registry));
    }

    private Timer timer(String name, String description, String... tagPairs) {
        return timers.computeIfAbsent(key(name, tagPairs), k -> Timer.builder(name).description(description)
                .tags(Tags.of(tagPairs(tagPairs))).publishPercentileHistogram().register(registry));
    }

    private static List<String> key(String name, String... tagPairs) {
        String[] key = new String[tagPairs.length + 1];
        key[0] = name;
        for (int i = 0; i < tagPairs.length; i++) {
            key[i + 1] = tagPairs[i] == null ? NONE : tagPairs[i];
        }
        return List.of(key);
    }

    private static Tag[] tagPairs(String... pairs) {
        Tag[] tags = new Tag[pairs.length / 2];
        for (int i = 0; i < tags.length; i++) {
            String value = pairs[2 * i + 1];
            tags[i] = Tag.of(pairs[2 * i], value == null ? NONE : value);
        }
        return tags;
    }

    private static Tags toTags(Map<String, String> tags) {
        List<Tag> list = new ArrayList<>();
        tags.forEach((k, v) -> list.add(Tag.of(k, v == null ? NONE : v)));
        return Tags.of(list);
    }
}
