package io.streamsaga.metrics;

import java.time.Duration;
import java.util.Map;

/**
 * The metrics SPI. The core calls it; a registry adapter (saga-micrometer) or the in-memory recorder of
 * the test kit implements it. Every method has a no-op default so an implementation overrides only what
 * it records. Implementations must be thread-safe and cheap: they are called on the delivery path.
 *
 * <p>A null topic, group, error type, reason, saga name, outcome or tag value is a value the caller could not name:
 * the library's recorders ({@code MicrometerMetricsRecorder}, the test kit's {@code InMemoryMetrics}) record it as
 * {@code none}, and take null tags as none; a null latency or saga duration is one it could not measure: they count the
 * event or saga without a timer sample. A null counter or distribution name or tag name is a bug of the caller: they
 * refuse it with a {@link NullPointerException} naming the counter or distribution; so is an observed value that is
 * NaN, infinite or negative, which they refuse with an {@link IllegalArgumentException} ({@link #observe}), and a name
 * of {@link #increment} or {@link #observe} whose Prometheus name another counter or distribution, or one of the
 * library's own meters, has already: a registry keeps one meter to a name, so they refuse it, whatever its tags, with
 * an {@link IllegalArgumentException} naming both ({@link MeterNames}).
 *
 * <p>What a recorder throws never changes what the library does: every recorder configured on the bus, the saga
 * orchestrator or a pattern is used {@link #guarded}, which logs it and ignores it (a message handled stays handled,
 * a failed one is retried and dead-lettered as per its policy, a call that recorded it does not fail).
 */
public interface MetricsRecorder {

    /** Records nothing. */
    MetricsRecorder NOOP = new MetricsRecorder() {
    };

    /**
     * A handler finished a message successfully; {@code latency} is how long its successful attempt took: the
     * handler's call and the bus's wait for the publishes the handler made on its thread. When the transport finishes
     * the delivery later (Kafka's {@code awaitPublishesPerBatch}), up to when the last of those publishes completed,
     * not the wait for the rest of the transport's batch.
     */
    default void eventProcessed(String topic, String group, Duration latency) {
    }

    /** One handling attempt failed with an error of {@code errorType} (simple class name). */
    default void eventFailed(String topic, String group, String errorType) {
    }

    /** A message went to the dead-letter topic; {@code reason} is a short code such as {@code handler-failed}. */
    default void eventDeadLettered(String topic, String group, String reason) {
    }

    /** A saga instance started. */
    default void sagaStarted(String sagaName) {
    }

    /** A saga instance reached a terminal state ({@code completed}, {@code compensated}, {@code failed}). */
    default void sagaFinished(String sagaName, String outcome, Duration duration) {
    }

    /** A named counter of a pattern (dedup evictions, unroutable messages...) grew by one. */
    default void increment(String name, Map<String, String> tags) {
    }

    /**
     * One value of a named distribution was observed: an order's amount, a payload's size, a latency the application
     * measured itself (the source's {@code metrics.observe('order_amount', data.amount)}). A recorder keeps its count,
     * sum and maximum, and where it is configured to, its spread (histogram buckets through {@code MicrometerMetricsRecorder}
     * and a Micrometer {@code MeterFilter}).
     * Names and tags are as for {@link #increment}: a null name is refused with a {@link NullPointerException} saying
     * {@code name}, a null tag name with one naming the distribution; null tags are none, a null tag value is
     * {@code none}.
     *
     * <p>{@code value} must be a finite number of 0 or more: the library's recorders refuse NaN, an infinity or a
     * negative value with an {@link IllegalArgumentException} quoting it and naming the distribution, and record
     * nothing. Such a value is a bug of the caller (an amount computed from a missing field, a clock gone backwards),
     * and recording it would corrupt the series rather than add to it: NaN or an infinity makes its sum and maximum
     * meaningless from then on, and a Micrometer {@code DistributionSummary} would drop a negative value without a
     * word. Called through {@link #guarded}, the refusal is logged at WARN and the caller goes on.
     */
    default void observe(String name, double value, Map<String, String> tags) {
    }

    /**
     * {@code recorder}, but what it throws is logged (an exception at WARN, an error at ERROR, as what a saga listener
     * throws) and ignored; a {@link VirtualMachineError}, a test's {@link io.streamsaga.saga.spi.SimulatedProcessCrash}
     * and a {@link ThreadDeath} still go through. {@link #NOOP} and a recorder already guarded are returned as they
     * are. The library guards every recorder it is given; an application's own code calling a recorder can too.
     */
    static MetricsRecorder guarded(MetricsRecorder recorder) {
        java.util.Objects.requireNonNull(recorder, "recorder");
        return recorder == NOOP || recorder instanceof GuardedMetricsRecorder ? recorder
                : new GuardedMetricsRecorder(recorder);
    }
}
