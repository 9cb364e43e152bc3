package io.streamsaga.idempotency;

import io.streamsaga.ConfigurationException;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.spi.Transport;

import java.time.Duration;
import java.util.Optional;

/** Shared validation of a deduplication window against the transport's replay horizon. */
final class WindowChecks {
    private WindowChecks() {
    }

    /**
     * A window shorter than what the transport can replay would let a replayed message through as new, so
     * it is refused rather than silently accepted.
     */
    static void requireCoversReplay(DeduplicationStore store, Transport transport) {
        Optional<Duration> horizon = transport.retentionHorizon();
        horizon.ifPresent(h -> ConfigurationException.require(store.window().compareTo(h) >= 0,
                "deduplication window %s is shorter than the replay horizon %s of transport '%s'; "
                        + "a replayed message would be processed again", store.window(), h, transport.name()));
    }
}
