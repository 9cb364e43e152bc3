package io.streamsaga.metrics;

import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The guard forwards every method of {@link MetricsRecorder}: a method added to the interface with a default body and
 * not overridden here would make every guarded recorder (the library guards all) silently drop that metric.
 */
class GuardedMetricsRecorderTest {

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
}
