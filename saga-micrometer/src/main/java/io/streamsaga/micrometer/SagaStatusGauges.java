package io.streamsaga.micrometer;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Gauges of how many sagas of each saga name are in each of some statuses, by default those an operator watches
 * (running, compensating, needing attention): the gauge {@value #NAME} tagged {@code saga} (the saga's name, as the
 * orchestrator's {@code saga.started} and {@code saga.finished} meters are) and {@code status} (the {@link SagaStatus}
 * constant's name), which a Prometheus registry scrapes as
 * {@code streamsaga_sagas{saga="order-saga",status="FAILED_NEEDS_ATTENTION"}}, one series per saga and status; the
 * totals over the sagas are a query's, {@code sum by (status) (streamsaga_sagas)}. A scrape reads the last counts and
 * never the store: they are counted by {@link SagaOrchestrator#countBySagaAndStatus} every interval (30 s by default),
 * on the given scheduler, the first time at once. The saga names are the store's: a saga name gets its gauges (one per
 * status counted) at the first count that finds a saga of it in one of the statuses, so none before the first count,
 * and they stay, reading 0 once no saga of the name is in them, until {@link #close()}; the names are those of the
 * definitions sagas were started under, a bounded set; a gauge the registry refuses then is logged at WARN, once, and
 * left out. A count that fails is logged at WARN and the gauges keep the last counts until the next interval's; so that
 * a dashboard can tell stale counts from fresh ones, the gauge {@value #COUNTED_NAME} (Prometheus:
 * {@code streamsaga_sagas_counted_timestamp_seconds}) reads the time of the last count that succeeded, in seconds since
 * the epoch on the scheduler's clock, NaN until the first one; a count whose thread is stopped (a {@link ThreadDeath})
 * is the last, as for the library's other periodic tasks ({@link Scheduler#repeat}; docs/architecture.md, "A periodic
 * task whose thread is stopped"). {@link #close()} stops the counts and removes the gauges from the registry. One
 * binding to a registry: a second one is refused at build, as Micrometer would hand it the first one's gauges
 * (orchestrators of one store count the same sagas: bind one of them), also when two builds run at once (exactly one
 * binds). Thread-safe.
 */
public final class SagaStatusGauges implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SagaStatusGauges.class);
    /** The gauges' Micrometer name; Prometheus shows it as {@code streamsaga_sagas}. */
    public static final String NAME = "streamsaga.sagas";
    /**
     * The gauge of the time of the last count that succeeded, in seconds since the epoch (base unit seconds); Prometheus
     * shows it as {@code streamsaga_sagas_counted_timestamp_seconds}.
     */
    public static final String COUNTED_NAME = "streamsaga.sagas.counted.timestamp";
    /** The statuses counted unless the builder says otherwise: those of the sagas not finished. */
    public static final Set<SagaStatus> DEFAULT_STATUSES = Collections.unmodifiableSet(
            EnumSet.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.FAILED_NEEDS_ATTENTION));
    /** How often the sagas are counted unless the builder says otherwise. */
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(30);
    /**
     * Held by a build from its check that the registry holds no binding to the registration of its gauges: two builds
     * at once on one registry would both pass the check, and Micrometer hand the second the first one's gauges. A lock,
     * no state; builds are rare.
     */
    private static final Object BINDING = new Object();

    private final SagaOrchestrator orchestrator;
    private final MeterRegistry registry;
    private final Set<SagaStatus> statuses;
    private final Duration interval;
    /** The counts on the configured scheduler: close() cancels the one queued and waits for one running. */
    private final Scheduler counts;
    /** The clock of the counts' times: the scheduler's, so that a virtual one gives virtual times. */
    private final Clock clock;
    /**
     * The gauges registered: the time of the last count's, then a gauge per status of each saga name counted so far;
     * added to by a count and emptied by close(), each under this object's lock.
     */
    private final List<Gauge> gauges = new ArrayList<>();
    /** The saga names whose gauges are registered; under this object's lock. */
    private final Set<String> sagas = new HashSet<>();
    /** The last counts, per saga name; empty until the first one succeeds. */
    private volatile Map<String, Map<SagaStatus, Long>> last = Map.of();
    /** When the last counts were made, in epoch seconds; NaN until the first one succeeds. */
    private volatile double lastCounted = Double.NaN;
    private volatile boolean closed;
    private volatile Scheduler.Cancellable next;

    private SagaStatusGauges(Builder builder) {
        this.orchestrator = builder.orchestrator;
        this.registry = builder.registry;
        this.statuses = Collections.unmodifiableSet(EnumSet.copyOf(builder.statuses));
        this.interval = builder.interval;
        this.counts = Scheduler.scoped(builder.scheduler, "saga status gauges");
        this.clock = builder.scheduler.clock();
        try {
            // a strong reference: Micrometer holds a gauge's object weakly, and the application may keep none
            gauges.add(Gauge.builder(COUNTED_NAME, this, gauge -> gauge.lastCounted).strongReference(true)
                    .baseUnit("seconds").description("when the sagas were last counted, in seconds since the epoch")
                    .register(registry));
            scheduleCounts(); // refused by a closed scheduler
        } catch (RuntimeException | Error e) {
            close(); // no gauge left to refuse the next binding, no count left queued
            throw e;
        }
    }

    /**
     * Gauges of the sagas of {@code orchestrator}'s store in {@code registry}, counted on {@code scheduler} (the bus's,
     * {@code bus.scheduler()}, say).
     */
    public static Builder builder(SagaOrchestrator orchestrator, MeterRegistry registry, Scheduler scheduler) {
        return new Builder(orchestrator, registry, scheduler);
    }

    /** The statuses counted, in the enum's order. */
    public Set<SagaStatus> statuses() {
        return statuses;
    }

    /** The last count of {@code saga}'s sagas in {@code status}: 0 once the count finds none in any status counted. */
    private double value(String saga, SagaStatus status) {
        Map<SagaStatus, Long> counted = last.get(saga);
        if (counted == null) {
            return 0;
        }
        Long count = counted.get(status); // none from a store that left it out
        return count == null ? Double.NaN : count;
    }

    /**
     * Registers a gauge per status counted for {@code saga}, a name no count found before; under this object's lock. A
     * gauge the registry refuses (a meter filter or listener that throws) is logged and left out, not asked for again at
     * each count: the other names' gauges are registered all the same, and none is registered twice.
     */
    private void register(String saga) {
        sagas.add(saga);
        for (SagaStatus status : statuses) {
            try {
                gauges.add(Gauge.builder(NAME, this, gauge -> gauge.value(saga, status)).strongReference(true)
                        .tag("saga", saga).tag("status", status.name())
                        .description("sagas of the saga name in the status, as last counted").register(registry));
            } catch (RuntimeException e) {
                log.warn("saga status gauges: the registry refused the gauge {} of saga {} in status {}, left out: {}",
                        NAME, saga, status, e.toString());
            }
        }
    }

    /**
     * The counts, the first at once, by the rule of the library's periodic tasks ({@link Scheduler#repeat}); a count
     * that finds the gauges closing (close() sets 'closed' before it cancels the counts) does nothing.
     */
    private void scheduleCounts() {
        next = Scheduler.repeat(counts, "saga status gauges: the periodic count", Duration.ZERO, interval, () -> {
            count();
            return false;
        });
    }

    private void count() {
        if (closed) {
            return;
        }
        Map<String, Map<SagaStatus, Long>> counted;
        try {
            counted = Map.copyOf(orchestrator.countBySagaAndStatus(statuses));
        } catch (RuntimeException e) {
            log.warn("saga status gauges: counting the sagas failed, the gauges keep the last counts until the next"
                    + " interval: {}", e.toString());
            return;
        }
        synchronized (this) {
            if (closed) { // closed while the store counted (close() removed the gauges): register none
                return;
            }
            last = counted;
            lastCounted = clock.millis() / 1000.0;
            for (String saga : counted.keySet()) {
                if (!sagas.contains(saga)) {
                    register(saga);
                }
            }
        }
    }

    /**
     * Stops the counts and removes the gauges from the registry: no count is left scheduled, and one running at that
     * moment on another thread finishes before close() returns (it waits up to the scheduler's
     * {@link Scheduler#closeWait()}).
     */
    @Override
    public void close() {
        closed = true;
        Scheduler.Cancellable timer = next;
        if (timer != null) {
            timer.cancel();
        }
        counts.close();
        synchronized (this) {
            gauges.forEach(registry::remove);
            gauges.clear();
            sagas.clear();
        }
    }

    /** Builds {@link SagaStatusGauges}; not thread-safe. */
    public static final class Builder {
        private final SagaOrchestrator orchestrator;
        private final MeterRegistry registry;
        private final Scheduler scheduler;
        private Set<SagaStatus> statuses = DEFAULT_STATUSES;
        private Duration interval = DEFAULT_INTERVAL;

        private Builder(SagaOrchestrator orchestrator, MeterRegistry registry, Scheduler scheduler) {
            this.orchestrator = Objects.requireNonNull(orchestrator, "orchestrator");
            this.registry = Objects.requireNonNull(registry, "registry");
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
        }

        /**
         * The statuses counted, a gauge each per saga name (default {@link #DEFAULT_STATUSES}): at least one, no null.
         * A terminal status counts every saga retention keeps; the store counts them at each interval.
         */
        public Builder statuses(Set<SagaStatus> statuses) {
            this.statuses = statuses;
            return this;
        }

        /** How often the sagas are counted (default {@link #DEFAULT_INTERVAL}): positive. */
        public Builder interval(Duration interval) {
            this.interval = interval;
            return this;
        }

        /**
         * Registers the gauges and queues the first count, at once; when that fails (a scheduler already closed
         * refuses the count with a {@link java.util.concurrent.RejectedExecutionException}) no gauge is left.
         *
         * @throws ConfigurationException when the statuses are none or hold a null, or the interval is not positive
         */
        public SagaStatusGauges build() {
            ConfigurationException.require(statuses != null && !statuses.isEmpty()
                            && statuses.stream().allMatch(Objects::nonNull),
                    "statuses must hold at least one status and no null, but was %s", statuses);
            interval = ConfigurationException.requirePositive(interval, "interval");
            synchronized (BINDING) {
                // Micrometer would hand back an existing gauge of a saga and status, which reads another binding's counts
                ConfigurationException.require(registry.find(NAME).gauge() == null,
                        "the registry has gauges %s already: bind one SagaStatusGauges to a registry", NAME);
                // also before the other binding's first count, and under other statuses: the time of the last count
                // would be the other binding's
                ConfigurationException.require(registry.find(COUNTED_NAME).gauge() == null,
                        "the registry has a gauge %s already: bind one SagaStatusGauges to a registry", COUNTED_NAME);
                return new SagaStatusGauges(this);
            }
        }
    }
}
