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
 * ({@code event.latency}, {@code saga.duration}) is taken too, as a meter of another type under it clashes.
 *
 * <p>A distribution (and a library timer) has a second Prometheus name, its maximum's: Micrometer exports it as a gauge
 * {@code <name>_max}, and a Prometheus registry takes a counter or distribution of that name beside it, then fails every
 * scrape ({@code orders_max: conflicting metric types}), so a distribution claims both names. Its other samples are
 * no clash and not checked: {@code orders_count} and {@code orders_sum} are samples of the family {@code orders}, which
 * a counter {@code orders_count} (family {@code orders_count}, sample {@code orders_count_total}) or a distribution
 * {@code orders_count} (samples {@code orders_count_count}, {@code orders_count_sum}) shares no sample name with; the
 * registry scrapes both (checked against micrometer-registry-prometheus 1.17 in saga-micrometer's tests). Thread-safe;
 * a name stays claimed for the recorder's life, as a registry keeps its meters.
 */
public final class MeterNames {
    private static final String COUNTER = "counter";
    private static final String DISTRIBUTION = "distribution";

    /**
     * The library's own meters, by Prometheus name: the bus's and the orchestrator's counters, and its timers under
     * their names (an application meter of the same name and another type clashes) and with the {@code _seconds} a
     * Prometheus registry adds to a timer, and saga-micrometer's gauges of the sagas by status and of the time they were
     * last counted ({@code SagaStatusGauges}, which a recorder does not register but which share the application's
     * registry), the latter under its name and with the {@code _seconds} of its base unit.
     */
    private static final Map<String, String> LIBRARY = Map.ofEntries(
            Map.entry("events_processed", "the library's counter events.processed"),
            Map.entry("events_failed", "the library's counter events.failed"),
            Map.entry("events_dead_lettered", "the library's counter events.dead.lettered"),
            Map.entry("saga_started", "the library's counter saga.started"),
            Map.entry("saga_finished", "the library's counter saga.finished"),
            Map.entry("event_latency", "the library's timer event.latency"),
            Map.entry("event_latency_seconds", "the library's timer event.latency"),
            Map.entry("event_latency_seconds_max", "the library's timer event.latency"),
            Map.entry("saga_duration", "the library's timer saga.duration"),
            Map.entry("saga_duration_seconds", "the library's timer saga.duration"),
            Map.entry("saga_duration_seconds_max", "the library's timer saga.duration"),
            Map.entry("streamsaga_sagas", "saga-micrometer's gauge streamsaga.sagas (SagaStatusGauges)"),
            Map.entry("streamsaga_sagas_counted_timestamp",
                    "saga-micrometer's gauge streamsaga.sagas.counted.timestamp (SagaStatusGauges)"),
            Map.entry("streamsaga_sagas_counted_timestamp_seconds",
                    "saga-micrometer's gauge streamsaga.sagas.counted.timestamp (SagaStatusGauges)"));

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
     * Claims {@code name} for a distribution, and its maximum's Prometheus name ({@code <name>_max}); a no-op if this
     * distribution has them already.
     *
     * @throws IllegalArgumentException when either Prometheus name is a counter's, another distribution's or a library
     *                                  meter's, naming both; neither is claimed then
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

    /**
     * Claims the Prometheus names of the counter or distribution {@code name}, both or none; synchronized so that a
     * distribution's two names are taken together (a claim is made once per name, at its first series).
     */
    private synchronized void claim(String kind, String name) {
        Objects.requireNonNull(name, "name");
        String prometheus = prometheusName(name);
        String claimant = kind + " " + name;
        List<String> wanted = kind.equals(DISTRIBUTION) ? List.of(prometheus, prometheus + "_max") : List.of(prometheus);
        for (String taken : wanted) {
            String owner = owners.get(taken);
            if (owner != null && !owner.equals(claimant)) {
                throw new IllegalArgumentException(claimant + " cannot be recorded: " + owner + " has the name " + taken
                        + " already (as Prometheus shows it; a registry keeps one meter to a name)");
            }
        }
        wanted.forEach(taken -> owners.put(taken, claimant));
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
