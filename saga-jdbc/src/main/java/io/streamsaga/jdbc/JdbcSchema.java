package io.streamsaga.jdbc;

import io.streamsaga.jdbc.internal.Dialect;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * StreamSaga's database schema: versioned SQL files shipped in this jar under
 * {@code io/streamsaga/jdbc/schema/postgresql/} and {@code .../h2/}, applied in order on request.
 *
 * <p>{@link #migrate()} creates the table {@code ss_schema_version} and applies every version that is not
 * recorded there yet, each version in one transaction; on PostgreSQL a table lock serialises two nodes
 * migrating at once. H2 commits each DDL statement on its own: a migration that died within a version left some of
 * its statements applied there, and the next one passes over what they created (a table, index or column that
 * exists) and records the version. Applications that manage their schema with their own tool
 * (Flyway, Liquibase) can copy the files instead and never call this class. Thread-safe.
 */
public final class JdbcSchema {
    private static final Logger log = LoggerFactory.getLogger(JdbcSchema.class);

    /** Every schema version, in order; the file {@code V<n>__<name>.sql} exists for each database. */
    static final List<String> VERSIONS = List.of(
            "V1__outbox_inbox.sql",
            "V2__deduplication.sql",
            "V3__aggregation.sql",
            "V4__saga.sql",
            "V5__payload.sql",
            "V6__message_ids.sql",
            "V7__saga_ownership.sql",
            "V8__aggregation_parts.sql",
            "V9__node_definitions.sql",
            "V10__business_key_order.sql",
            "V11__saga_name_status.sql");

    /** SQL states of a CREATE TABLE IF NOT EXISTS that lost a race with the same statement on another node. */
    private static final Set<String> CREATED_CONCURRENTLY = Set.of("23505", "42P07", "42710");

    /** SQL states of a query of a table that does not exist: PostgreSQL's, and H2's (also with candidates or no table). */
    private static final Set<String> UNDEFINED_TABLE = Set.of("42P01", "42S02", "42S03", "42S04");

    /** H2's SQL states of DDL whose object exists: table or view, index, column. */
    private static final Set<String> APPLIED_BEFORE = Set.of("42S01", "42S11", "42S21");

    private static final Object MIGRATING = new Object();

    private final DataSource dataSource;

    private JdbcSchema(DataSource dataSource) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
    }

    /** The schema of the database behind {@code dataSource}. */
    public static JdbcSchema of(DataSource dataSource) {
        return new JdbcSchema(dataSource);
    }

    /** The latest schema version this library knows. */
    public static int latestVersion() {
        return VERSIONS.size();
    }

    /**
     * Applies every schema version not applied yet and returns the version the database is at.
     *
     * @throws JdbcException when a statement fails (that version is rolled back on PostgreSQL; on H2, where DDL
     *                       commits, the next migrate() passes over what its statements already created)
     */
    public int migrate() {
        return migrate(VERSIONS.size());
    }

    /** Applies the versions up to {@code target} (tests of a migration start from an older version). */
    int migrate(int target) {
        Dialect dialect;
        try (Connection connection = dataSource.getConnection()) {
            dialect = Dialect.of(connection);
        } catch (SQLException e) {
            throw JdbcException.of("cannot connect to migrate the schema", e);
        }
        if (dialect == Dialect.POSTGRESQL) {
            return migrateOnce(target); // its table lock serialises nodes (and threads)
        }
        // H2 has no table lock, its FOR UPDATE locks no row of an empty table and its DDL commits: threads of
        // one process migrating at once are serialised here.
        synchronized (MIGRATING) {
            return migrateOnce(target);
        }
    }

    private int migrateOnce(int target) {
        JdbcTransactions tx = new JdbcTransactions(dataSource);
        try {
            tx.run(connection -> {
                try (Statement s = connection.createStatement()) {
                    s.execute("CREATE TABLE IF NOT EXISTS ss_schema_version (version INTEGER PRIMARY KEY, "
                            + "name VARCHAR(200) NOT NULL, applied_at TIMESTAMP WITH TIME ZONE NOT NULL)");
                }
            });
        } catch (JdbcException e) {
            // Another node created it at the same moment (PostgreSQL's IF NOT EXISTS is not atomic): it exists
            // now. The loser sees a unique violation in the catalog (23505), "relation exists" (42P07) or
            // "type exists" (42710, the table's row type), depending on where the two creations met.
            if (!CREATED_CONCURRENTLY.contains(e.sqlState())) {
                throw e;
            }
        }
        return tx.inTransaction(connection -> {
            Dialect dialect = Dialect.of(connection);
            try (Statement s = connection.createStatement()) {
                // serialises concurrent migrations: the second waits, then sees the versions applied
                if (dialect == Dialect.POSTGRESQL) {
                    s.execute("LOCK TABLE ss_schema_version IN EXCLUSIVE MODE");
                } else {
                    s.executeQuery("SELECT version FROM ss_schema_version FOR UPDATE").close();
                }
            }
            int current = currentVersion(connection);
            for (int v = current + 1; v <= target; v++) {
                String file = VERSIONS.get(v - 1);
                for (String sql : statements(read(dialect, file))) {
                    try (Statement s = connection.createStatement()) {
                        s.execute(sql);
                    } catch (SQLException e) {
                        // H2 commits each DDL statement: a migration that died within this version applied some of
                        // its statements and recorded nothing, so the next one finds what they created.
                        if (dialect != Dialect.H2 || !APPLIED_BEFORE.contains(e.getSQLState())) {
                            throw e;
                        }
                        log.info("StreamSaga schema {}: a migration that did not finish already applied: {}", file,
                                sql.lines().findFirst().orElse(sql));
                    }
                }
                try (PreparedStatement ps = connection.prepareStatement(
                        "INSERT INTO ss_schema_version (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)")) {
                    ps.setInt(1, v);
                    ps.setString(2, file);
                    ps.executeUpdate();
                }
                log.info("applied StreamSaga schema {} on {}", file, dialect);
            }
            return Math.max(current, target);
        });
    }

    /**
     * The version the database is at; 0 when the schema was never created (no {@code ss_schema_version} table).
     *
     * @throws JdbcException when it cannot be read: the database is unreachable, the table cannot be read (the user
     *                       lacks the right to), a query fails
     */
    public int currentVersion() {
        try (Connection connection = dataSource.getConnection()) {
            if (!tableExists(connection)) {
                return 0;
            }
            return currentVersion(connection);
        } catch (SQLException e) {
            throw JdbcException.of("cannot read the schema version", e);
        }
    }

    /**
     * Whether the version table exists. Only "no such table" means it does not: any other error (no right to read it,
     * a connection lost) is thrown, or a component's check would take the schema as the application's own tool's to
     * manage and skip itself over a database at an older version.
     */
    private static boolean tableExists(Connection connection) throws SQLException {
        try (Statement s = connection.createStatement()) {
            s.executeQuery("SELECT 1 FROM ss_schema_version WHERE 1 = 0").close();
            return true;
        } catch (SQLException e) {
            if (UNDEFINED_TABLE.contains(e.getSQLState())) {
                return false;
            }
            throw e;
        }
    }

    private static int currentVersion(Connection connection) throws SQLException {
        try (Statement s = connection.createStatement();
             ResultSet rs = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM ss_schema_version")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static String read(Dialect dialect, String file) {
        String path = "/io/streamsaga/jdbc/schema/" + dialect.folder() + "/" + file;
        try (InputStream in = JdbcSchema.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("schema file missing from the jar: " + path);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    /** Splits a schema file into statements at semicolons ending a line; drops {@code --} comments. */
    static List<String> statements(String script) {
        List<String> result = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : script.split("\n")) {
            String trimmed = line.strip();
            if (trimmed.startsWith("--") || trimmed.isEmpty()) {
                continue;
            }
            current.append(line).append('\n');
            if (trimmed.endsWith(";")) {
                String sql = current.toString().strip();
                result.add(sql.substring(0, sql.length() - 1));
                current.setLength(0);
            }
        }
        if (!current.toString().isBlank()) {
            result.add(current.toString().strip());
        }
        return result;
    }
}
