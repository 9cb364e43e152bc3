package io.streamsaga.claimcheck;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import io.streamsaga.ConfigurationException;
import io.streamsaga.Sha256;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The claim check as a bus interceptor: opting in is one line,
 * {@code EventBus.builder(transport).interceptor(ClaimCheckInterceptor.builder(store, transport).build())}.
 *
 * <p>On publish, a payload whose encoded form is larger than the threshold (default 1 MiB, Kafka's default
 * message limit, less 64 KiB for the key and headers) is put in the {@link PayloadStore} under its SHA-256 (identical payloads are stored once)
 * and the message carries a {@link PayloadReference} in headers instead, with a small JSON body that
 * repeats it. On receive, the reference is resolved and verified (size and checksum) before decoding, so
 * handlers see the original event. A missing or corrupt payload fails with a non-retriable
 * {@link ClaimCheckException} and the bus dead-letters the message; a store outage is retriable.
 *
 * <p>Clean-up: each published record holds its payload (the record is its topic, message id and the
 * {@link PayloadReference#HOLD_HEADER} token). Once every consumer group subscribed to the topic
 * ({@link Transport#consumerGroups}) has acknowledged or dead-lettered the record, its hold is released, and
 * the payload is deleted when no other record holds it. When a group dead-lettered the record, the payload
 * is kept until the expiry by default, so that the dead letter can still be resolved and replayed. Whatever
 * happens — a group that never comes back, a crash that loses this interceptor's in-memory tracking, groups
 * acknowledging on different instances — every payload is deleted after the expiry
 * ({@link #purgeExpired()}, done periodically on the scheduler in batches). The expiry must cover the transport's
 * replay horizon. A message published twice to one topic (an application's publish retry, an outbox
 * relay's re-publish after a crash) is two records and two holds, so the second record is delivered with its
 * payload like any duplicate, whatever the groups did with the first. A publish that failed keeps its hold
 * until the expiry, since its record may have landed all the same.
 *
 * <p>A group that subscribes later and reads from the earliest position (a {@code Reprocessor} replay, a
 * new projection) finds the payloads released before it subscribed missing, and dead-letters those
 * records: for a topic that is replayed, set {@link Builder#keepUntilExpiry(boolean)}, and payloads are
 * deleted by the expiry only. A group subscribed elsewhere counts once the transport lists it, which may be
 * a little later ({@link Transport#consumerGroups}; on Kafka within {@code consumerGroupsMaxAge}). Thread-safe.
 */
public final class ClaimCheckInterceptor implements MessageInterceptor, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClaimCheckInterceptor.class);
    /**
     * Default threshold: 1 MiB (Kafka's default {@code max.request.size} and {@code message.max.bytes}) less
     * 64 KiB for the record's key, headers and Kafka's own overhead, so that an event left inline fits a
     * record; at exactly 1 MiB a payload Kafka would reject (about 240 bytes over with the bus's headers) was
     * left inline.
     */
    public static final int DEFAULT_THRESHOLD = 1024 * 1024 - 64 * 1024;
    /** Counter of payloads moved to the store on publish. */
    public static final String STORED_METRIC = "streamsaga_claimcheck_stored_total";
    /** Counter of payloads deleted, tagged {@code reason} = {@code released} or {@code expired}. */
    public static final String DELETED_METRIC = "streamsaga_claimcheck_deleted_total";
    private static final String REFERENCE_CONTENT_TYPE = "application/vnd.streamsaga.claim-check+json";
    /** Payloads deleted per batch of the scheduled expiry sweep, as the JDBC components' purges. */
    private static final int SWEEP_BATCH = 500;

    private final Config config;
    private final Map<String, Tracking> tracking = new ConcurrentHashMap<>();
    /**
     * The expiry sweeps on the configured scheduler: close() cancels the one queued and waits for one running. A
     * scope of a scheduler the application gave, which others may share; the scheduler itself when the builder
     * created it, which nothing else uses: its close() then waits for a running sweep once, not a scope's close and
     * then the scheduler's again.
     */
    private final Scheduler sweeps;
    private final Scheduler.Cancellable sweep;
    private volatile boolean closed;
    /**
     * The cutoff of the expiry sweep's run in progress, null between runs, and what it deleted so far: used by one
     * batch at a time, each queued by the one before.
     */
    private Instant sweepCutoff;
    private int sweptInRun;

    /** {@code ownsScheduler}: the builder created the scheduler, which {@link #close()} then closes. */
    ClaimCheckInterceptor(Config config, boolean ownsScheduler) { // package-private for a test of the own scheduler
        this.config = config;
        this.sweeps = ownsScheduler ? config.scheduler() : Scheduler.scoped(config.scheduler(), "claim-check interceptor");
        this.sweep = Scheduler.repeat(sweeps, "claim-check interceptor: its expiry sweep", config.sweepInterval(),
                config.sweepInterval(), this::sweepBatch);
    }

    /** Starts an interceptor over {@code store}; {@code transport} tells which groups must acknowledge. */
    public static Builder builder(PayloadStore store, Transport transport) {
        return new Builder(store, transport);
    }

    public Config config() {
        return config;
    }

    @Override
    public Message beforePublish(Message message, EventCodec codec) {
        if (message.payload() == null || message.headers().containsKey(PayloadReference.ID_HEADER)) {
            return message; // nothing to check, or already checked (a dead letter being re-published)
        }
        if (message.headers().containsKey(PayloadReference.RESOLVED_ID_HEADER)
                || message.headers().containsKey(PayloadReference.HOLD_HEADER)) {
            // A resolved message published again: what it was resolved from and held by is the received
            // record's, and would otherwise name the wrong payload or hold on this record.
            message = message.toBuilder().removeHeader(PayloadReference.RESOLVED_ID_HEADER)
                    .removeHeader(PayloadReference.HOLD_HEADER).build();
        }
        byte[] bytes = codec.encode(message.payload());
        if (bytes.length <= config.threshold()) {
            // Hand the encoded form on when the transport would encode it anyway, so it is encoded once.
            return config.transport().carriesObjects() || bytes == message.payload() ? message : message.withPayload(bytes);
        }
        String sha256 = Sha256.hex(bytes);
        String contentType = message.headers().getOrDefault(MessageHeaders.CONTENT_TYPE, "application/json");
        PayloadReference reference = new PayloadReference(sha256, bytes.length, sha256, contentType);
        // A fresh token per publish: a second publish of the same message is a second record, and a second hold.
        String hold = Message.newId();
        try {
            config.store().put(reference.id(), bytes, holderOf(message.topic(), message.id(), hold), now());
        } catch (ClaimCheckException e) {
            throw e;
        } catch (RuntimeException e) {
            throw ClaimCheckException.storeFailure(reference.id(), "store", e);
        }
        config.metrics().increment(STORED_METRIC, Map.of("topic", message.topic()));
        log.debug("claim-checked {} bytes of {} as {}", bytes.length, message, reference.id());
        // For readers in other languages: the content type comes from the publisher, so it is escaped as JSON.
        String body = "{\"claimCheck\":{\"id\":\"" + reference.id() + "\",\"size\":" + reference.size()
                + ",\"sha256\":\"" + reference.sha256() + "\",\"contentType\":\""
                + new String(JsonStringEncoder.getInstance().quoteAsString(contentType)) + "\"}}";
        return message.toBuilder()
                .payload(body.getBytes(StandardCharsets.UTF_8))
                .headers(reference.toHeaders())
                .header(PayloadReference.HOLD_HEADER, hold)
                .header(MessageHeaders.CONTENT_TYPE, REFERENCE_CONTENT_TYPE)
                .build();
    }

    @Override
    public Message afterReceive(Message message, String group) {
        Optional<PayloadReference> found;
        try {
            found = PayloadReference.fromHeaders(message.headers());
        } catch (ConfigurationException e) {
            throw ClaimCheckException.malformedReference(message.id(), e.getMessage());
        }
        if (found.isEmpty()) {
            return message;
        }
        PayloadReference reference = found.get();
        byte[] content;
        try {
            content = config.store().get(reference.id()).orElseThrow(() -> ClaimCheckException.missing(reference, message.id()));
        } catch (ClaimCheckException e) {
            throw e;
        } catch (RuntimeException e) {
            throw ClaimCheckException.storeFailure(reference.id(), "read", e);
        }
        if (content.length != reference.size()) {
            throw ClaimCheckException.corrupt(reference, message.id(),
                    "size is " + content.length + " bytes, the reference says " + reference.size());
        }
        String actual = Sha256.hex(content);
        if (!actual.equals(reference.sha256())) {
            throw ClaimCheckException.corrupt(reference, message.id(),
                    "SHA-256 is " + actual + ", the reference says " + reference.sha256());
        }
        return message.toBuilder()
                .payload(content)
                .header(MessageHeaders.CONTENT_TYPE, reference.contentType())
                .removeHeader(PayloadReference.ID_HEADER)
                .removeHeader(PayloadReference.SIZE_HEADER)
                .removeHeader(PayloadReference.SHA256_HEADER)
                .removeHeader(PayloadReference.CONTENT_TYPE_HEADER)
                .header(PayloadReference.RESOLVED_ID_HEADER, reference.id())
                .build();
    }

    @Override
    public void onAcknowledged(Message message, String group) {
        settle(message, group, false);
    }

    @Override
    public void onDeadLettered(Message message, String group) {
        settle(message, group, true);
    }

    private void settle(Message message, String group, boolean deadLettered) {
        // Acknowledgements see the resolved message, dead letters the received one.
        String payloadId = message.headers().get(PayloadReference.RESOLVED_ID_HEADER);
        if (payloadId == null) {
            payloadId = message.headers().get(PayloadReference.ID_HEADER);
        }
        if (payloadId == null || config.keepUntilExpiry()) {
            return;
        }
        Set<String> required = config.transport().consumerGroups(message.topic());
        String held = payloadId;
        String holder = holderOf(message);
        Tracking[] finished = new Tracking[1]; // tracked per record, like the hold
        tracking.compute(holder, (id, current) -> {
            Tracking next = (current == null ? new Tracking(held, now()) : current).with(group, deadLettered);
            if (next.groups.containsAll(required)) {
                finished[0] = next;
                return null;
            }
            return next;
        });
        if (finished[0] == null) {
            return;
        }
        if (finished[0].deadLettered && config.keepDeadLettered()) {
            log.debug("payload {} of {} kept until expiry: a group dead-lettered the message", payloadId, message);
            return;
        }
        release(payloadId, holder);
    }

    /** The holder a received record is in the store: see {@link #holderOf(String, String, String)}. */
    private static String holderOf(Message message) {
        return holderOf(message.topic(), message.id(), message.headers().get(PayloadReference.HOLD_HEADER));
    }

    /**
     * The holder a record is in the store: its topic, message id and hold token (hashed, to fit any store).
     * Not the id alone, because a message forwarded to another topic under its own id is a second hold on
     * the payload, to be released only once that topic's groups are done with it; and not the topic and id
     * alone, because a message published twice to one topic is two records, each to be acknowledged by every
     * group. A record without a token (published by an earlier version) is held under its topic and id. Hashed
     * as UTF-8, a topic or id holding a lone surrogate in a form of its own (an earlier version hashed it as '?':
     * such a record's release by this version finds no holder and its payload stays until its expiry).
     */
    private static String holderOf(String topic, String messageId, String hold) {
        String record = hold == null ? topic + "\n" + messageId : topic + "\n" + messageId + "\n" + hold;
        return Sha256.hexOfText(record);
    }

    private void release(String payloadId, String holder) {
        try {
            if (config.store().release(payloadId, holder)) {
                config.metrics().increment(DELETED_METRIC, Map.of("reason", "released"));
                log.debug("deleted payload {}: every group is done with every message holding it", payloadId);
            }
        } catch (RuntimeException e) {
            // Not fatal: the expiry deletes it later.
            log.warn("could not release payload {} held by {}: {}", payloadId, holder, e.toString());
        }
    }

    /**
     * Deletes every payload stored longer ago than the expiry, and forgets acknowledgement tracking just as
     * old, in one call of the store ({@link PayloadStore#deleteStoredBefore(Instant)}); returns how many payloads were
     * deleted. The periodic sweep on the scheduler does the same batch by batch
     * ({@link PayloadStore#deleteStoredBefore(Instant, int)}), each batch a task of its own.
     */
    public int purgeExpired() {
        Instant cutoff = now().minus(config.expiry());
        tracking.values().removeIf(t -> t.since.isBefore(cutoff));
        int deleted = config.store().deleteStoredBefore(cutoff);
        countExpired(deleted);
        logExpired(deleted);
        return deleted;
    }

    private void countExpired(int deleted) {
        for (int i = 0; i < deleted; i++) {
            config.metrics().increment(DELETED_METRIC, Map.of("reason", "expired"));
        }
    }

    private void logExpired(int deleted) {
        if (deleted > 0) {
            log.info("deleted {} claim-checked payload(s) older than {}", deleted, config.expiry());
        }
    }

    /**
     * One batch of the scheduled expiry sweep's run, which reads its cutoff at its first batch (forgetting the tracking
     * as old, as {@link #purgeExpired()} does) and keeps it: payloads expiring meanwhile wait for the next run; true
     * after a full batch: another follows, a task of its own queued at once, so that the scheduler's other timers (a
     * bus's: sagas' timeouts and retries) due meanwhile run between batches. A failure ends the run.
     */
    private boolean sweepBatch() {
        if (closed) { // close() sets it before it cancels the sweep
            return false;
        }
        if (sweepCutoff == null) {
            Instant cutoff = now().minus(config.expiry());
            tracking.values().removeIf(t -> t.since.isBefore(cutoff));
            sweepCutoff = cutoff;
            sweptInRun = 0;
        }
        boolean more = false;
        try {
            int deleted = config.store().deleteStoredBefore(sweepCutoff, SWEEP_BATCH);
            countExpired(deleted);
            sweptInRun += deleted;
            more = deleted == SWEEP_BATCH;
            if (!more) {
                logExpired(sweptInRun);
            }
        } catch (RuntimeException e) {
            // sweptInRun: the batches before the failing one, as the retention purge's WARN says
            log.warn("claim-check expiry sweep failed after {} expired payload(s) deleted, retrying at the next"
                    + " interval: {}", sweptInRun, e.toString());
        } finally {
            if (!more) { // also after a failure: the next run reads its own cutoff
                sweepCutoff = null;
            }
        }
        return more;
    }

    /** How many records wait for some group to finish with them (tracked by this instance). */
    public int pendingMessages() {
        return tracking.size();
    }

    /**
     * Stops the periodic expiry sweep (and the scheduler, when the builder created it): no sweep is left
     * scheduled, and one running at that moment on another thread finishes before close() returns (it waits up to
     * 10 s for it).
     */
    @Override
    public void close() {
        closed = true;
        sweep.cancel();
        sweeps.close(); // the scheduler itself when the builder created it
    }

    private Instant now() {
        return config.scheduler().clock().instant();
    }

    /** Which groups are done with one record. Immutable. */
    private record Tracking(String payloadId, Instant since, Set<String> groups, boolean deadLettered) {
        Tracking(String payloadId, Instant since) {
            this(payloadId, since, Set.of(), false);
        }

        Tracking with(String group, boolean groupDeadLettered) {
            Set<String> more = new HashSet<>(groups);
            more.add(group);
            return new Tracking(payloadId, since, Set.copyOf(more), deadLettered || groupDeadLettered);
        }
    }

    /**
     * Immutable configuration.
     *
     * @param store            where payloads go
     * @param transport        tells which consumer groups must be done with a message
     * @param scheduler        time and the periodic expiry sweep
     * @param metrics          counters of stored and deleted payloads; kept {@link MetricsRecorder#guarded guarded}
     * @param threshold        payloads larger than this many bytes are claim-checked
     * @param expiry           payloads older than this are deleted whatever their holders
     * @param sweepInterval    how often the expiry sweep runs
     * @param keepDeadLettered keep the payload of a dead-lettered message until the expiry
     * @param keepUntilExpiry  never release a payload when the groups are done: only the expiry deletes it
     */
    public record Config(PayloadStore store, Transport transport, Scheduler scheduler, MetricsRecorder metrics,
                         int threshold, Duration expiry, Duration sweepInterval, boolean keepDeadLettered,
                         boolean keepUntilExpiry) {
        public Config {
            Objects.requireNonNull(store, "store");
            Objects.requireNonNull(transport, "transport");
            Objects.requireNonNull(scheduler, "scheduler");
            metrics = MetricsRecorder.guarded(Objects.requireNonNull(metrics, "metrics")); // what it throws: logged, ignored
            ConfigurationException.require(threshold >= 0, "claim-check threshold must be 0 or more bytes, but was %s", threshold);
            // An age threshold, not a delay: FOREVER (covering a transport that keeps every record) is taken as MAX_DURATION.
            expiry = ConfigurationException.requirePositiveAge(expiry, "claim-check expiry");
            ConfigurationException.requirePositive(sweepInterval, "sweep interval");
            Optional<Duration> horizon = transport.retentionHorizon();
            ConfigurationException.require(horizon.isEmpty() || expiry.compareTo(horizon.get()) >= 0,
                    "claim-check expiry %s is shorter than the replay horizon %s of transport '%s'; "
                            + "a replayed message would find its payload deleted", expiry, horizon.orElse(null), transport.name());
        }
    }

    /** Builds a {@link ClaimCheckInterceptor}; not thread-safe. */
    public static final class Builder {
        private final PayloadStore store;
        private final Transport transport;
        private Scheduler scheduler;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;
        private int threshold = DEFAULT_THRESHOLD;
        private Duration expiry = Duration.ofDays(7);
        private Duration sweepInterval = Duration.ofHours(1);
        private boolean keepDeadLettered = true;
        private boolean keepUntilExpiry;

        private Builder(PayloadStore store, Transport transport) {
            this.store = Objects.requireNonNull(store, "store");
            this.transport = Objects.requireNonNull(transport, "transport");
        }

        /** Time and the expiry sweep; use the bus's scheduler (default: a system scheduler). */
        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        /**
         * Payloads larger than this many encoded bytes go to the store (default {@link #DEFAULT_THRESHOLD}: 1 MiB
         * less 64 KiB for the key and headers). Leave room for them when setting it to a transport's limit.
         */
        public Builder threshold(int bytes) {
            this.threshold = bytes;
            return this;
        }

        /**
         * Payloads older than this are deleted in any case (default 7 days). Positive; an age, not a delay, so one
         * longer than {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER.getDuration()}, to cover
         * a transport that keeps every record) is taken as that ({@link ConfigurationException#requirePositiveAge}).
         */
        public Builder expiry(Duration expiry) {
            this.expiry = expiry;
            return this;
        }

        /** How often expired payloads are looked for (default 1 hour). */
        public Builder sweepInterval(Duration interval) {
            this.sweepInterval = interval;
            return this;
        }

        /**
         * Whether the payload of a message some group dead-lettered is kept until the expiry so the dead
         * letter stays resolvable (default true), or released like an acknowledged one.
         */
        public Builder keepDeadLettered(boolean keep) {
            this.keepDeadLettered = keep;
            return this;
        }

        /**
         * Whether payloads are kept until the expiry even once every group subscribed to the topic is done
         * (default false: released then). Set it when the topic is replayed by groups that subscribe later
         * and read from the earliest position (a {@code Reprocessor} replay, a new projection): they would
         * find a released payload missing and dead-letter the record. The expiry must then cover how far
         * back such a replay reads.
         */
        public Builder keepUntilExpiry(boolean keep) {
            this.keepUntilExpiry = keep;
            return this;
        }

        public ClaimCheckInterceptor build() {
            boolean own = scheduler == null;
            return new ClaimCheckInterceptor(new Config(store, transport, own ? Scheduler.system() : scheduler,
                    metrics, threshold, expiry, sweepInterval, keepDeadLettered, keepUntilExpiry), own);
        }
    }
}
