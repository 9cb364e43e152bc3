package io.streamsaga.jdbc;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.claimcheck.JdbcPayloadStore;
import io.streamsaga.jdbc.idempotency.JdbcDeduplicationStore;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.function.Executable;

import javax.sql.DataSource;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The clean-ups of the JDBC components refuse a cutoff they cannot compare with, on any database. */
class JdbcPurgeArgumentsTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.h2();

    @Test
    void aPurgeGivenANullCutoffIsRefusedNotTakenAsNothingToDelete() {
        // A null cutoff went into SQL as NULL: "sent_at < NULL" holds for no row, so purgeSent, purgeProcessedBefore,
        // deleteStoredBefore and deleteFinishedBefore deleted nothing and returned 0, as if nothing were old enough,
        // where JdbcDeduplicationStore.purge refused it; a clean-up job with a cutoff it failed to compute kept every
        // row, silently. Each now refuses it, naming it.
        DataSource ds = db.database().dataSource();
        JdbcSchema.of(ds).migrate();
        try (VirtualScheduler scheduler = new VirtualScheduler(); InMemoryTransport transport = InMemoryTransport.builder().build();
             EventBus bus = EventBus.builder(transport).scheduler(scheduler).build()) {
            Map<String, Executable> purges = new LinkedHashMap<>();
            purges.put("JdbcOutbox.purgeSent", () -> JdbcOutbox.builder(ds).eventBus(bus).build().purgeSent(null, 10));
            purges.put("JdbcInbox.purgeProcessedBefore",
                    () -> JdbcInbox.create(ds, Clock.systemUTC()).purgeProcessedBefore(null, 10));
            purges.put("JdbcPayloadStore.deleteStoredBefore", () -> JdbcPayloadStore.create(ds).deleteStoredBefore(null));
            purges.put("JdbcPayloadStore.deleteStoredBefore(max)",
                    () -> JdbcPayloadStore.create(ds).deleteStoredBefore(null, 10));
            purges.put("JdbcSagaStore.deleteFinishedBefore", () -> JdbcSagaStore.create(ds).deleteFinishedBefore(null));
            purges.put("JdbcSagaStore.deleteFinishedBefore(max)",
                    () -> JdbcSagaStore.create(ds).deleteFinishedBefore(null, 10));
            purges.put("JdbcDeduplicationStore.purge", () -> JdbcDeduplicationStore.builder(ds).build().purge(null, 10));
            purges.forEach((name, purge) -> {
                NullPointerException e = assertThrows(NullPointerException.class, purge, name);
                assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), name + " names the argument: " + e);
            });
        }
    }
}
