package io.streamsaga.metrics;

import io.streamsaga.saga.spi.SimulatedProcessCrash;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Map;

/**
 * {@link MetricsRecorder#guarded}: forwards each call and logs what the recorder throws instead of throwing it, as
 * the saga orchestrator does with what a listener throws: an exception (also a checked one, sneaked) at WARN, an
 * error at ERROR; a {@link VirtualMachineError} (the process is dying), a {@link SimulatedProcessCrash} (a test
 * says it is) and a {@link ThreadDeath} (the thread is stopped) go through.
 */
final class GuardedMetricsRecorder implements MetricsRecorder {
    private static final Logger log = LoggerFactory.getLogger(GuardedMetricsRecorder.class);

    private final MetricsRecorder delegate;

    GuardedMetricsRecorder(MetricsRecorder delegate) {
        this.delegate = delegate;
    }

    @Override
    public void eventProcessed(String topic, String group, Duration latency) {
        try {
            delegate.eventProcessed(topic, group, latency);
        } catch (Throwable e) {
            failed("eventProcessed", topic, e);
        }
    }

    @Override
    public void eventFailed(String topic, String group, String errorType) {
        try {
            delegate.eventFailed(topic, group, errorType);
        } catch (Throwable e) {
            failed("eventFailed", topic, e);
        }
    }

    @Override
    public void eventDeadLettered(String topic, String group, String reason) {
        try {
            delegate.eventDeadLettered(topic, group, reason);
        } catch (Throwable e) {
            failed("eventDeadLettered", topic, e);
        }
    }

    @Override
    public void sagaStarted(String sagaName) {
        try {
            delegate.sagaStarted(sagaName);
        } catch (Throwable e) {
            failed("sagaStarted", sagaName, e);
        }
    }

    @Override
    public void sagaFinished(String sagaName, String outcome, Duration duration) {
        try {
            delegate.sagaFinished(sagaName, outcome, duration);
        } catch (Throwable e) {
            failed("sagaFinished", sagaName, e);
        }
    }

    @Override
    public void increment(String name, Map<String, String> tags) {
        try {
            delegate.increment(name, tags);
        } catch (Throwable e) {
            failed("increment", name, e);
        }
    }

    @Override
    public void observe(String name, double value, Map<String, String> tags) {
        try {
            delegate.observe(name, value, tags);
        } catch (Throwable e) {
            failed("observe", name, e);
        }
    }

    private void failed(String call, String of, Throwable e) {
        // ThreadDeath: the thread stopped (Thread.stop), which whoever catches it must let die by rethrowing it
        if (e instanceof VirtualMachineError || e instanceof SimulatedProcessCrash || e instanceof ThreadDeath) {
            throw (Error) e;
        }
        if (e instanceof Error) {
            log.error("metrics recorder {} failed on {}({}); ignored: {}", delegate, call, of, e.toString());
        } else {
            log.warn("metrics recorder {} failed on {}({}); ignored: {}", delegate, call, of, e.toString());
        }
    }

    @Override
    public String toString() {
        return "guarded(" + delegate + ")";
    }
}
