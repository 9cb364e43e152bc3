package io.streamsaga.jdbc.testing;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * One isolated, empty database for one test: a fresh schema on the shared embedded PostgreSQL server,
 * or a fresh in-memory H2 database in PostgreSQL mode. Obtain it from {@link DatabaseExtension}.
 *
 * @param kind       which engine
 * @param dataSource connections to the isolated database (each connection starts in the test's schema)
 * @param jdbcUrl    the URL a child process can use to reach the same database
 * @param user       user name for {@code jdbcUrl}
 * @param password   password for {@code jdbcUrl}
 */
public record TestDatabase(Kind kind, DataSource dataSource, String jdbcUrl, String user, String password) {

    /** The engines every JDBC test runs on. */
    public enum Kind { POSTGRES, H2 }

    /** Runs one SQL statement in auto-commit mode (test set-up: application tables, etc.). */
    public void execute(String sql) {
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException("test SQL failed: " + sql, e);
        }
    }

    /**
     * How many sessions of the database wait for a lock another holds: a test awaits it before it lets the holder go
     * on, so that the waiter is known to have reached the lock.
     */
    public long sessionsWaitingForALock() {
        return queryLong(kind == Kind.POSTGRES
                ? "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                : "SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS WHERE BLOCKER_ID IS NOT NULL");
    }

    /** A single long value from a query such as {@code select count(*) ...}. */
    public long queryLong(String sql) {
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement();
             var rs = s.executeQuery(sql)) {
            if (!rs.next()) {
                throw new IllegalStateException("no row from: " + sql);
            }
            return rs.getLong(1);
        } catch (SQLException e) {
            throw new IllegalStateException("test SQL failed: " + sql, e);
        }
    }
}
