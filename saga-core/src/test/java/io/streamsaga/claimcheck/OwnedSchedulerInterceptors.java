package io.streamsaga.claimcheck;

import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;

import java.time.Duration;

/**
 * Claim-check interceptors that own a scheduler the test gives, as the builder's own when given none (which it closes
 * with itself), for tests outside this package: a {@code SystemScheduler} with a short close wait, say. Here, in
 * saga-core's tests (its test-jar), because it needs the package-private constructor: in another module's tests this
 * package would be split across modules.
 */
public final class OwnedSchedulerInterceptors {
    private OwnedSchedulerInterceptors() {
    }

    /** An interceptor with the builder's defaults, sweeping every {@code sweepInterval} on {@code owned}. */
    public static ClaimCheckInterceptor owning(Scheduler owned, PayloadStore store, Transport transport,
                                               Duration sweepInterval) {
        return new ClaimCheckInterceptor(new ClaimCheckInterceptor.Config(store, transport, owned, MetricsRecorder.NOOP,
                ClaimCheckInterceptor.DEFAULT_THRESHOLD, Duration.ofDays(7), sweepInterval, true, false), true);
    }
}
