package io.streamsaga.inmemory.patterns;

import io.streamsaga.ConfigurationException;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.spi.StoredKeys;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A {@link DeduplicationStore} in the heap of one process, bounded by age and by count. Evictions are
 * counted under {@value #EVICTIONS_METRIC} with tags {@code store} and {@code reason} ({@code expired} for
 * keys older than the window, {@code capacity} for keys dropped early to respect {@code maxEntries}: those
 * are the dangerous ones, so the first is also logged as a warning). Forgets everything on restart; use a
 * durable store where duplicates after a restart matter. Thread-safe (one lock; operations are O(1)
 * amortized). An owner holding U+0000 or a lone surrogate, or longer than
 * {@link StoredKeys#MAX_DEDUP_OWNER_LENGTH}, is refused, as a durable store refuses it ({@link StoredKeys}); a key
 * holding one, or of any length, is a key like another.
 */
public final class InMemoryDeduplicationStore implements DeduplicationStore {
    private static final Logger log = LoggerFactory.getLogger(InMemoryDeduplicationStore.class);
    /** Counter of keys forgotten, tagged by store name and reason. */
    public static final String EVICTIONS_METRIC = "streamsaga_dedup_evictions_total";

    private final String name;
    private final Duration window;
    private final long maxEntries;
    private final MetricsRecorder metrics;
    private final Map<String, Claim> claims = new HashMap<>();
    /** Done keys in completion order, so the oldest is evicted first. */
    private final LinkedHashMap<String, Instant> done = new LinkedHashMap<>();
    private boolean warnedAboutCapacity;
    /** When the oldest done key leaves the window; null when none is done. Spares a scan on every call. */
    private Instant purgeDueAt;

    private InMemoryDeduplicationStore(Builder builder) {
        this.name = builder.name;
        this.window = builder.window;
        this.maxEntries = builder.maxEntries;
        this.metrics = MetricsRecorder.guarded(builder.metrics);
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public synchronized ClaimOutcome tryClaim(String key, String owner, Instant now, Duration lease) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(owner, "owner");
        StoredKeys.requireStorable(owner, StoredKeys.MAX_DEDUP_OWNER_LENGTH, "owner"); // as a durable store must: such an owner then holds no claim
        purgeExpired(now);
        if (isDoneAt(key, now)) {
            return ClaimOutcome.DONE;
        }
        Claim current = claims.get(key);
        if (current != null && !current.owner.equals(owner) && current.leaseUntil.isAfter(now)) {
            return ClaimOutcome.IN_PROGRESS;
        }
        claims.put(key, new Claim(owner, now.plus(lease)));
        return ClaimOutcome.ACQUIRED;
    }

    @Override
    public synchronized boolean complete(String key, String owner, Instant now) {
        Claim current = claims.get(key);
        if (current == null || !current.owner.equals(owner)) {
            return false;
        }
        claims.remove(key);
        done.remove(key);
        done.put(key, now);
        if (purgeDueAt == null) {
            purgeDueAt = now.plus(window);
        }
        while (done.size() > maxEntries) {
            Iterator<Map.Entry<String, Instant>> oldest = done.entrySet().iterator();
            String evicted = oldest.next().getKey();
            oldest.remove();
            evicted("capacity");
            if (!warnedAboutCapacity) {
                warnedAboutCapacity = true;
                log.warn("deduplication store '{}' is full ({} keys): evicting key '{}' before its window {} ended; "
                        + "a redelivery of it would be processed again (counted in {})", name, maxEntries, evicted,
                        window, EVICTIONS_METRIC);
            }
            purgeDueAt = null; // the oldest key changed
        }
        if (purgeDueAt == null) {
            purgeDueAt = oldestDoneAt().plus(window);
        }
        return true;
    }

    @Override
    public synchronized void release(String key, String owner) {
        Claim current = claims.get(key);
        if (current != null && current.owner.equals(owner)) {
            claims.remove(key);
        }
    }

    @Override
    public synchronized boolean isDone(String key, Instant now) {
        purgeExpired(now);
        return isDoneAt(key, now);
    }

    @Override
    public Duration window() {
        return window;
    }

    @Override
    public long maxEntries() {
        return maxEntries;
    }

    /** How many done keys are remembered now. */
    public synchronized int size() {
        return done.size();
    }

    private boolean isDoneAt(String key, Instant now) {
        Instant at = done.get(key);
        return at != null && at.plus(window).isAfter(now);
    }

    private void purgeExpired(Instant now) {
        // Claims whose lease ended are dead holders (crashed handlers); drop them so they cannot pile up.
        if (claims.size() > maxEntries) {
            claims.values().removeIf(claim -> !claim.leaseUntil.isAfter(now));
        }
        if (purgeDueAt == null || now.isBefore(purgeDueAt)) {
            return;
        }
        Instant cutoff = now.minus(window);
        Iterator<Map.Entry<String, Instant>> it = done.entrySet().iterator();
        while (it.hasNext()) {
            if (it.next().getValue().isAfter(cutoff)) {
                break; // completion order: everything after is younger
            }
            it.remove();
            evicted("expired");
        }
        purgeDueAt = done.isEmpty() ? null : oldestDoneAt().plus(window);
    }

    private Instant oldestDoneAt() {
        return done.values().iterator().next();
    }

    private void evicted(String reason) {
        metrics.increment(EVICTIONS_METRIC, Map.of("store", name, "reason", reason));
    }

    private record Claim(String owner, Instant leaseUntil) {
    }

    /** Builds an {@link InMemoryDeduplicationStore}; not thread-safe. */
    public static final class Builder {
        private String name = "in-memory";
        private Duration window = Duration.ofDays(7);
        private long maxEntries = 1_000_000;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;

        private Builder() {
        }

        /** A name for metrics and logs. */
        public Builder name(String name) {
            ConfigurationException.require(name != null && !name.isBlank(), "store name must not be blank, but was '%s'", name);
            this.name = name;
            return this;
        }

        /**
         * How long a done key is remembered (default 7 days, Kafka's default retention). Positive; an age, so one longer
         * than {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER.getDuration()}, to cover a
         * transport that keeps every record) is taken as that ({@link ConfigurationException#requirePositiveAge}).
         */
        public Builder window(Duration window) {
            this.window = ConfigurationException.requirePositiveAge(window, "window");
            return this;
        }

        /** How many done keys are remembered at most (default 1,000,000). */
        public Builder maxEntries(long maxEntries) {
            ConfigurationException.require(maxEntries >= 1, "maxEntries must be 1 or more, but was %s", maxEntries);
            this.maxEntries = maxEntries;
            return this;
        }

        /** Where evictions are counted. */
        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        public InMemoryDeduplicationStore build() {
            return new InMemoryDeduplicationStore(this);
        }
    }
}
