package io.streamsaga.metrics;

import java.time.Duration;
import java.util.Map;

/**
 * The metrics SPI. The core calls it; a registry adapter (saga-micrometer) or the in-memory recorder of
 * the test kit implements it. Every method has a no-op default so an implementation overrides only what
 * it records. Implementations must be thread-safe and cheap: they are called on the delivery path.
 */
public interface MetricsRecorder {

    /** Records nothing. */
    MetricsRecorder NOOP = new MetricsRecorder() {
    };

    /** A handler finished a message successfully; {@code latency} is how long its successful call took. */
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
}
