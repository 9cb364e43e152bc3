package io.streamsaga.metrics;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The names of one recorder's counters ({@link MetricsRecorder#increment}) and distributions
 * ({@link MetricsRecorder#observe}), one meter to a name as a registry keeps them: the library's recorders claim each
 * name at its first series and refuse one that would share its Prometheus name with a meter of another kind or name,
 * or with one of the library's own meters ({@code events_processed}, {@code event_latency_seconds},
 * {@code saga_duration_seconds}...). Micrometer refuses a second meter type under one name and tags, and a Prometheus
 * registry takes a meter whose Prometheus name another meter has (under other tags, or another name that maps to it)
 * but leaves whichever came second out of every scrape (the library's own, when the application's came first), saying
 * so once per process; the in-memory recorder refuses the same names, so that a test fails where production would lose
 * the values.
 *
 * <p>A Prometheus name is the name with each character Prometheus does not allow in one (a dot, a dash) as {@code _},
 * without a {@code _total}, {@code _created}, {@code _bucket} or {@code _info} at its end, which Prometheus takes off
 * any meter's name (and adds to a counter's samples); a library timer's Micrometer name
 * ({@code event.latency}, {@code saga.duration}) is taken too, as a meter of another type under it clashes. Thread-safe;
 * a name stays claimed for the recorder's life, as a registry keeps its meters.
 */
public final class MeterNames {
    private static final String COUNTER = "counter";
    private static final String DISTRIBUTION = "distribution";

    /**
     * The library's own meters, by Prometheus name: the bus's and the orchestrator's counters, and its timers under
     * their names (an application meter of the same name and another type clashes) and with the {@code _seconds} a
     * Prometheus registry adds to a timer.
     */
    private static final Map<String, String> LIBRARY = Map.of(
            "events_processed", "the library's counter events.processed",
            "events_failed", "the library's counter events.failed",
            "events_dead_lettered", "the library's counter events.dead.lettered",
            "saga_started", "the library's counter saga.started",
            "saga_finished", "the library's counter saga.finished",
            "event_latency", "the library's timer event.latency",
            "event_latency_seconds", "the library's timer event.latency",
            "saga_duration", "the library's timer saga.duration",
            "saga_duration_seconds", "the library's timer saga.duration");

    /** What Prometheus takes off the end of every metric's name, again and again ({@code a_info_total} is {@code a}). */
    private static final List<String> RESERVED_SUFFIXES = List.of("_total", "_created", "_bucket", "_info");

    /** Who has each Prometheus name: {@code counter orders}, {@code distribution order_amount}, a library meter. */
    private final Map<String, String> owners = new ConcurrentHashMap<>(LIBRARY);

    /** Names of no counter or distribution yet, the library's own meters' aside. */
    public MeterNames() {
    }

    /**
     * Claims {@code name} for a counter; a no-op if this counter has it already.
     *
     * @throws IllegalArgumentException when its Prometheus name is a distribution's, another counter's or a library
     *                                  meter's, naming both
     */
    public void claimCounter(String name) {
        claim(COUNTER, name);
    }

    /**
     * Claims {@code name} for a distribution; a no-op if this distribution has it already.
     *
     * @throws IllegalArgumentException when its Prometheus name is a counter's, another distribution's or a library
     *                                  meter's, naming both
     */
    public void claimDistribution(String name) {
        claim(DISTRIBUTION, name);
    }

    /**
     * Refuses a {@code value} of the distribution {@code name} that is NaN, infinite or negative, as both library
     * recorders do ({@link MetricsRecorder#observe}): a Micrometer {@code DistributionSummary} drops a negative value
     * and NaN without a word and keeps an infinity in its sum and maximum for good, and the in-memory recorder refuses
     * what production would lose.
     *
     * @throws IllegalArgumentException quoting the value and naming the distribution
     */
    public static void requireObservable(String name, double value) {
        if (!Double.isFinite(value) || value < 0) {
            throw new IllegalArgumentException("a value of distribution " + name + " must be finite and 0 or more, but was "
                    + value);
        }
    }

    private void claim(String kind, String name) {
        Objects.requireNonNull(name, "name");
        String prometheus = prometheusName(name);
        String claimant = kind + " " + name;
        String owner = owners.putIfAbsent(prometheus, claimant);
        if (owner != null && !owner.equals(claimant)) {
            throw new IllegalArgumentException(claimant + " cannot be recorded: " + owner + " has the name " + prometheus
                    + " already (as Prometheus shows it; a registry keeps one meter to a name)");
        }
    }

    /** {@code name} as a Prometheus registry shows it (micrometer-registry-prometheus 1.17 on prometheus-metrics 1.7). */
    private static String prometheusName(String name) {
        String prometheus = name.replaceAll("[^a-zA-Z0-9_:]", "_");
        if (!prometheus.isEmpty() && Character.isDigit(prometheus.charAt(0))) {
            prometheus = "_" + prometheus.substring(1);
        }
        boolean stripped = true;
        while (stripped) {
            stripped = false;
            for (String reserved : RESERVED_SUFFIXES) {
                if (prometheus.endsWith(reserved) && prometheus.length() > reserved.length()) {
                    prometheus = prometheus.substring(0, prometheus.length() - reserved.length());
                    stripped = true;
                }
            }
        }
        return prometheus;
    }
}
