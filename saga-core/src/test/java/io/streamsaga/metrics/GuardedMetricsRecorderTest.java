package io.streamsaga.metrics;

import io.streamsaga.CapturedLog;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The guard forwards every method of {@link MetricsRecorder}: a method added to the interface with a default body and
 * not overridden here would make every guarded recorder (the library guards all) silently drop that metric.
 */
class GuardedMetricsRecorderTest {
    private static final String GUARDED = "io.streamsaga.metrics.GuardedMetricsRecorder";

    @Test
    void everyMethodOfTheInterfaceIsForwardedNotLeftToItsDefault() throws Exception {
        for (Method method : MetricsRecorder.class.getMethods()) {
            if (Modifier.isStatic(method.getModifiers())) {
                continue;
            }
            Method implemented = GuardedMetricsRecorder.class.getMethod(method.getName(), method.getParameterTypes());
            assertEquals(GuardedMetricsRecorder.class, implemented.getDeclaringClass(), method.toString());
        }
    }

    @Test
    void anObserveThatThrowsAnExceptionOrAnErrorIsForwardedThenLoggedAndIgnoredButADyingVirtualMachineGoesThrough()
            throws Throwable {
        // observe is the one call an application makes with its own values (the source's metrics.observe): a recorder
        // refusing one (NaN, a null name) or a broken registry must not fail the handler that measured it; what it
        // threw is logged, an Error at ERROR, an exception at WARN, naming the recorder, the call and the meter.
        String failed = GUARDED + " - metrics recorder throwing recorder failed on"
                + " observe(order_amount); ignored: ";
        Map<Supplier<? extends Throwable>, String> logged = new LinkedHashMap<>();
        logged.put(() -> new IllegalArgumentException("a value of distribution order_amount must be finite and 0 or more,"
                + " but was NaN"), "WARN " + failed + "java.lang.IllegalArgumentException: a value of distribution"
                + " order_amount must be finite and 0 or more, but was NaN");
        logged.put(() -> new NullPointerException("name"), "WARN " + failed + "java.lang.NullPointerException: name");
        logged.put(() -> new AssertionError("a bug in the recorder"), "ERROR " + failed
                + "java.lang.AssertionError: a bug in the recorder");
        logged.put(() -> new java.io.IOException("a checked one, sneaked"), "WARN " + failed
                + "java.io.IOException: a checked one, sneaked");
        for (Map.Entry<Supplier<? extends Throwable>, String> thrown : logged.entrySet()) {
            List<String> observed = new ArrayList<>();
            MetricsRecorder guarded = MetricsRecorder.guarded(throwingObserve(observed, thrown.getKey()));

            String log = CapturedLog.ofLogger(GUARDED,
                    () -> guarded.observe("order_amount", 25.5, Map.of("currency", "EUR")));

            assertEquals(List.of("order_amount 25.5 {currency=EUR}"), observed, "forwarded as given: " + thrown.getValue());
            assertTrue(log.contains(thrown.getValue() + System.lineSeparator()), "logged once, as " + thrown.getValue()
                    + ": " + log);
            assertEquals(1, log.lines().count(), log);
        }
        OutOfMemoryError dying = new OutOfMemoryError("the process is dying");
        MetricsRecorder guarded = MetricsRecorder.guarded(throwingObserve(new ArrayList<>(), () -> dying));
        String log = CapturedLog.ofLogger(GUARDED, () -> assertSame(dying, assertThrows(OutOfMemoryError.class,
                () -> guarded.observe("order_amount", 1, null))));
        assertEquals("", log, "thrown through, not logged as ignored");
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aThreadDeathFromTheRecorderGoesThroughNotLoggedAsIgnored() throws Throwable {
        // ThreadDeath asks the thread to die; whoever catches it must rethrow it (its Javadoc). The guard logged it as
        // a recorder's Error and went on, so a thread stopped while it recorded a metric lived on.
        ThreadDeath stopped = new ThreadDeath();
        MetricsRecorder guarded = MetricsRecorder.guarded(throwingObserve(new ArrayList<>(), () -> stopped));
        String log = CapturedLog.ofLogger(GUARDED, () -> assertSame(stopped, assertThrows(ThreadDeath.class,
                () -> guarded.observe("order_amount", 1, null))));
        assertEquals("", log, "thrown through, not logged as ignored");
    }

    /** Records each observe call, then throws what {@code thrown} makes. */
    private static MetricsRecorder throwingObserve(List<String> observed, Supplier<? extends Throwable> thrown) {
        return new MetricsRecorder() {
            @Override
            public void observe(String name, double value, Map<String, String> tags) {
                observed.add(name + " " + value + " " + tags);
                sneakyThrow(thrown.get());
            }

            @Override
            public String toString() {
                return "throwing recorder";
            }
        };
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> void sneakyThrow(Throwable e) throws E {
        throw (E) e;
    }
}
