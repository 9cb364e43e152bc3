package io.streamsaga.jdbc;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.idempotency.JdbcDeduplicationStore;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.temporal.ChronoUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A duration longer than {@link ConfigurationException#MAX_DURATION} is refused where it is configured, naming the
 * setting: the relay's {@code pollInterval} and {@code publishTimeout} threw an {@code ArithmeticException} from
 * their own check ({@code toMillis()} overflows). The dedup store's {@code window}, an age, is taken as the maximum. No database is needed.
 */
class JdbcDurationLimitsTest {
    private static final Duration FOREVER = ChronoUnit.FOREVER.getDuration();
    private static final String TOO_LONG = " must be at most PT2562047H47M16.854775807S (Long.MAX_VALUE nanoseconds,"
            + " about 292 years), but was " + FOREVER;

    @Test
    void theRelaysPollIntervalAndPublishTimeoutAndTheDedupWindowAreRefusedLongerThanTheMaximum() {
        JdbcDataSource dataSource = new JdbcDataSource();
        dataSource.setURL("jdbc:h2:mem:duration-limits");
        try (InMemoryTransport transport = InMemoryTransport.builder().build();
             VirtualScheduler scheduler = new VirtualScheduler()) {
            assertEquals("pollInterval" + TOO_LONG, assertThrows(ConfigurationException.class,
                    () -> OutboxRelay.builder(dataSource).transport(transport).scheduler(scheduler).pollInterval(FOREVER).build()).getMessage());
            assertEquals("publishTimeout" + TOO_LONG, assertThrows(ConfigurationException.class,
                    () -> OutboxRelay.builder(dataSource).transport(transport).scheduler(scheduler).publishTimeout(FOREVER).build()).getMessage());
            assertEquals("pollInterval must be at least 1 ms, but was PT0.0005S", assertThrows(ConfigurationException.class,
                    () -> OutboxRelay.builder(dataSource).transport(transport).scheduler(scheduler).pollInterval(Duration.ofNanos(500_000))
                            .build()).getMessage());
        }
        // The dedup window is an age, not a delay: a longer one is taken as the maximum (292 years before now is a
        // time every database keeps), to cover a transport that keeps every record.
        JdbcDataSource migrated = new JdbcDataSource();
        migrated.setURL("jdbc:h2:mem:duration-limits-dedup;DB_CLOSE_DELAY=-1");
        JdbcSchema.of(migrated).migrate();
        JdbcDeduplicationStore keepingAll = JdbcDeduplicationStore.builder(migrated).window(FOREVER).build();
        assertEquals(ConfigurationException.MAX_DURATION, keepingAll.window());
        assertEquals(0, keepingAll.purge(java.time.Instant.parse("2026-11-27T00:00:00Z"), 10), "a purge finds nothing past it");
    }
}
