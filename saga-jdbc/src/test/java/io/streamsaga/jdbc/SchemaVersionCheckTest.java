package io.streamsaga.jdbc;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.aggregator.JdbcAggregationStore;
import io.streamsaga.jdbc.claimcheck.JdbcPayloadStore;
import io.streamsaga.jdbc.idempotency.JdbcDeduplicationStore;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every component over the StreamSaga tables checks, once when built, that {@code JdbcSchema.migrate()} brought the
 * database to the version the library needs: over an older schema (version 5 still had the 200-character message
 * ids of version 1) each one worked until some write failed obscurely.
 */
class SchemaVersionCheckTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.h2();

    private DataSource dataSource;
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().build();
    private EventBus bus;

    @BeforeEach
    void setUp() {
        dataSource = db.database().dataSource();
        bus = EventBus.builder(transport).scheduler(scheduler).build();
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
        scheduler.close();
    }

    /** Builds each component over the test database. */
    private Map<String, Supplier<Object>> components() {
        Map<String, Supplier<Object>> components = new LinkedHashMap<>();
        components.put("JdbcOutbox", () -> JdbcOutbox.builder(dataSource).eventBus(bus).build());
        components.put("OutboxRelay", () -> OutboxRelay.builder(dataSource).eventBus(bus).executor(Runnable::run).build());
        components.put("JdbcInbox", () -> JdbcInbox.create(dataSource, Clock.systemUTC()));
        components.put("JdbcDeduplicationStore", () -> JdbcDeduplicationStore.builder(dataSource).build());
        components.put("JdbcAggregationStore", () -> JdbcAggregationStore.create(dataSource));
        components.put("JdbcPayloadStore", () -> JdbcPayloadStore.create(dataSource));
        components.put("JdbcSagaStore", () -> JdbcSagaStore.create(dataSource));
        return components;
    }

    @Test
    void everyComponentBuiltOverAnOlderSchemaIsRefusedNamingBothVersionsAndMigrate() {
        int older = JdbcSchema.latestVersion() - 1;
        JdbcSchema.of(dataSource).migrate(older);

        Map<String, String> refusals = new LinkedHashMap<>();
        components().forEach((name, build) -> refusals.put(name,
                assertThrows(ConfigurationException.class, build::get, name).getMessage()));
        Map<String, String> expected = new LinkedHashMap<>();
        components().keySet().forEach(name -> expected.put(name, name + " needs StreamSaga schema version "
                + JdbcSchema.latestVersion() + ", but the database is at version " + older
                + ": run JdbcSchema.of(dataSource).migrate() before building it"));
        assertEquals(expected, refusals);

        assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(dataSource).migrate());
        components().values().forEach(Supplier::get);
    }

    @Test
    void aNewerSchemaIsTakenSoANodeOfTheEarlierReleaseStillStartsDuringARollingUpgrade() {
        JdbcSchema.of(dataSource).migrate();
        db.database().execute("INSERT INTO ss_schema_version (version, name, applied_at) VALUES ("
                + (JdbcSchema.latestVersion() + 1) + ", 'V" + (JdbcSchema.latestVersion() + 1) + "__next.sql', CURRENT_TIMESTAMP)");
        components().values().forEach(Supplier::get); // logged at warn level, each
    }

    @Test
    void aSagaStoreWritingThroughItsOwnOutboxChecksTheSchemaOnce() {
        // A JdbcSagaStore with lifecycle events or transactional messages built an internal JdbcOutbox, which ran the
        // check again: two queries of ss_schema_version, and two warnings over a newer schema. The build now takes one
        // connection, for its one check.
        JdbcSchema.of(dataSource).migrate();
        AtomicInteger connections = new AtomicInteger();
        DataSource counting = (DataSource) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {DataSource.class}, (proxy, method, args) -> {
                    if (method.getName().equals("getConnection")) {
                        connections.incrementAndGet();
                    }
                    try {
                        return method.invoke(dataSource, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        JdbcSagaStore.builder(counting).lifecycleEventsToOutbox("saga-lifecycle").transactionalMessages().build();
        assertEquals(1, connections.get());
    }

    @Test
    void aSchemaWithoutTheVersionTableIsNotCheckedAsTheApplicationsOwnToolManagesIt() {
        components().values().forEach(Supplier::get);
        assertEquals(0, JdbcSchema.of(dataSource).currentVersion());
    }

    @Test
    void aVersionTableTheApplicationsUserMayNotReadFailsTheBuildInsteadOfSkippingTheCheck() {
        // JdbcSchema.currentVersion() took any error of its probe of ss_schema_version for "no such table": a user
        // without the right to read it (the schema migrated by an admin user, the application's user granted only its
        // tables), or a connection lost mid-query, read version 0, and every component skipped its check, as if the
        // application's own tool managed the schema, over a database at an older version.
        int older = JdbcSchema.latestVersion() - 1;
        JdbcSchema.of(dataSource).migrate(older);
        db.database().execute("CREATE USER app PASSWORD 'app'");
        org.h2.jdbcx.JdbcDataSource app = new org.h2.jdbcx.JdbcDataSource();
        app.setURL(db.database().jdbcUrl().replace(";DEFAULT_NULL_ORDERING=HIGH;DB_CLOSE_DELAY=-1", "")); // settings only an admin may give
        app.setUser("app");
        app.setPassword("app");
        dataSource = app;

        assertThrows(JdbcException.class, () -> JdbcSchema.of(app).currentVersion());
        components().forEach((name, build) -> assertThrows(JdbcException.class, build::get, name));
    }
}
