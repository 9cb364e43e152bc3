package io.streamsaga.jdbc.testing;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.postgresql.ds.PGSimpleDataSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * JUnit 5 extension handing each test an isolated, empty {@link TestDatabase} on PostgreSQL or H2.
 *
 * <p>One embedded PostgreSQL 17 server is started per test JVM, lazily, by the first test that needs it,
 * and kept in the root {@link ExtensionContext.Store} so every test class of the run shares it (a start
 * costs seconds on a loaded machine); JUnit closes it when the run ends. Each test then gets its own
 * schema on that server, so tests never see each other's rows. H2 gets a fresh named in-memory database
 * per test. No static mutable state: the server lives in the store, the per-test database in this
 * extension instance, which a test class registers with {@code @RegisterExtension}. Registered on a static field, it
 * hands the whole class one database, made before {@code @BeforeAll} methods run (for services a class starts once,
 * such as those on a Kafka broker).
 */
public final class DatabaseExtension implements BeforeAllCallback, BeforeEachCallback {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(DatabaseExtension.class);

    private final TestDatabase.Kind kind;
    private TestDatabase current;
    private boolean perClass;

    private DatabaseExtension(TestDatabase.Kind kind) {
        this.kind = kind;
    }

    /** Tests on the shared embedded PostgreSQL server. */
    public static DatabaseExtension postgres() {
        return new DatabaseExtension(TestDatabase.Kind.POSTGRES);
    }

    /** Tests on in-memory H2 in PostgreSQL mode. */
    public static DatabaseExtension h2() {
        return new DatabaseExtension(TestDatabase.Kind.H2);
    }

    /** One extension for {@code kind}. */
    public static DatabaseExtension of(TestDatabase.Kind kind) {
        return new DatabaseExtension(kind);
    }

    /**
     * The database of the running test, or of the class for an extension on a static field; valid from
     * {@code @BeforeEach} on, from {@code @BeforeAll} on for a static one.
     */
    public TestDatabase database() {
        if (current == null) {
            throw new IllegalStateException("no test database yet: use it from @BeforeEach or a test method");
        }
        return current;
    }

    /** Called only for an extension on a static field: one database for every test of the class. */
    @Override
    public void beforeAll(ExtensionContext context) {
        perClass = true;
        current = newDatabase(context);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        if (!perClass) {
            current = newDatabase(context);
        }
    }

    private TestDatabase newDatabase(ExtensionContext context) {
        ExtensionContext.Store root = context.getRoot().getStore(NAMESPACE);
        AtomicLong counter = root.getOrComputeIfAbsent("counter", k -> new AtomicLong(), AtomicLong.class);
        String name = "t" + counter.incrementAndGet();
        return kind == TestDatabase.Kind.POSTGRES ? postgresSchema(root, name) : h2Database(name);
    }

    private static TestDatabase h2Database(String name) {
        // DB_CLOSE_DELAY=-1 keeps the database while no connection is open; nothing persists past the JVM.
        String url = "jdbc:h2:mem:" + name + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;DB_CLOSE_DELAY=-1";
        JdbcDataSource ds = new JdbcDataSource();
        ds.setURL(url);
        ds.setUser("sa");
        ds.setPassword("");
        return new TestDatabase(TestDatabase.Kind.H2, ds, url, "sa", "");
    }

    private static TestDatabase postgresSchema(ExtensionContext.Store root, String schema) {
        PostgresServer server = root.getOrComputeIfAbsent(PostgresServer.class, k -> PostgresServer.start(),
                PostgresServer.class);
        PGSimpleDataSource admin = (PGSimpleDataSource) server.postgres.getPostgresDatabase();
        try (Connection c = admin.getConnection(); Statement s = c.createStatement()) {
            s.execute("create schema " + schema);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot create test schema " + schema, e);
        }
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setServerNames(new String[]{"localhost"});
        ds.setPortNumbers(new int[]{server.postgres.getPort()});
        ds.setDatabaseName("postgres");
        ds.setUser("postgres");
        ds.setCurrentSchema(schema);
        String url = "jdbc:postgresql://localhost:" + server.postgres.getPort() + "/postgres?currentSchema=" + schema;
        return new TestDatabase(TestDatabase.Kind.POSTGRES, ds, url, "postgres", "");
    }

    /** The embedded server, closed by JUnit at the end of the run through the root store. */
    private static final class PostgresServer implements ExtensionContext.Store.CloseableResource, AutoCloseable {
        private final EmbeddedPostgres postgres;

        private PostgresServer(EmbeddedPostgres postgres) {
            this.postgres = postgres;
        }

        static PostgresServer start() {
            try {
                return new PostgresServer(EmbeddedPostgres.builder()
                        .setLocaleConfig("locale", "C")
                        .setLocaleConfig("encoding", "UTF8")
                        .setPGStartupWait(Duration.ofSeconds(60))
                        .setServerConfig("fsync", "off")
                        .setServerConfig("max_connections", "100")
                        .start());
            } catch (IOException e) {
                throw new UncheckedIOException("embedded PostgreSQL did not start", e);
            }
        }

        @Override
        public void close() throws IOException {
            postgres.close();
        }
    }

}
