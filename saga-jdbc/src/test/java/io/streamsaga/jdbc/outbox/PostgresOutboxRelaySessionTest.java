package io.streamsaga.jdbc.outbox;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.ds.PGSimpleDataSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The relay's batch transaction on PostgreSQL, whose server may end a session on its own: its lock is then gone, and
 * the relay must not go on publishing as if it still held it.
 */
class PostgresOutboxRelaySessionTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    private TestDatabase database;
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().build();
    private EventBus bus;

    @BeforeEach
    void setUp() {
        database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        bus = EventBus.builder(transport).scheduler(scheduler).build();
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    @Test
    void aRelayWhoseSessionTheServerEndedMidBatchPublishesNoFurtherRowOfIt() {
        // The batch's transaction sits idle while the relay awaits each acknowledgement; a server that ends idle
        // transactions (idle_in_transaction_session_timeout, a DBA's usual guard) ended the session and with it the
        // lock, and another node's relay published the batch. The first relay did not notice until it marked its rows:
        // it went on publishing the rest of its batch after the other had, so consumers saw each key's events again,
        // older after newer. It now checks that it still holds its lock before each row after the first.
        JdbcOutbox outbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).build();
        new JdbcTransactions(database.dataSource()).run(c -> {
            for (int i = 0; i < 3; i++) {
                outbox.append(c, Message.builder("orders").id("m-" + i).key("k").type("order-created")
                        .payload(("{\"n\":" + i + "}").getBytes(StandardCharsets.UTF_8)).build());
            }
        });
        PGSimpleDataSource ending = new PGSimpleDataSource();
        ending.setURL(database.jdbcUrl());
        ending.setUser(database.user());
        ending.setApplicationName("relay-a");
        ending.setOptions("-c idle_in_transaction_session_timeout=200");
        List<String> published = new CopyOnWriteArrayList<>();
        OutboxRelay nodeB = OutboxRelay.builder(database.dataSource()).scheduler(scheduler).name("orders")
                .publisher(m -> {
                    published.add("B " + m.id());
                    return CompletableFuture.completedFuture(null);
                }).build();
        OutboxRelay nodeA = OutboxRelay.builder(ending).scheduler(scheduler).name("orders").publisher(m -> {
            published.add("A " + m.id());
            if (published.size() == 1) {
                // the acknowledgement takes longer than the server lets a transaction sit idle
                Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> database.queryLong(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'relay-a'") == 0);
                assertEquals(3, nodeB.relayPending(), "the lock is gone with the session: node B relays the batch");
            }
            return CompletableFuture.completedFuture(null);
        }).build();

        assertThrows(JdbcException.class, nodeA::relayPending);

        assertEquals(List.of("A m-0", "B m-0", "B m-1", "B m-2"), published,
                "A's first row again at least once, and nothing of A's batch after B relayed it");
        assertEquals(0, outbox.pendingCount());
    }
}
