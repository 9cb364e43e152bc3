package io.streamsaga.jdbc;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.testing.Around;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.Test;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JdbcTransactionsTest {
    @Test
    void anIsolationLevelNoConnectionKnowsIsRefusedWhenSetNotAtTheFirstTransaction() {
        JdbcTransactions tx = new JdbcTransactions(new JdbcDataSource());
        for (int level : new int[] {Connection.TRANSACTION_NONE, 3, -1, 42}) {
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> tx.withIsolation(level));
            assertTrue(e.getMessage().contains("but was " + level), e.getMessage());
        }
        assertDoesNotThrow(() -> tx.withIsolation(Connection.TRANSACTION_SERIALIZABLE));
    }

    @Test
    void aConnectionFailureBeforeTheCommitIsAPlainFailureNotOfUnknownOutcome() {
        // Opening the connection, turning auto-commit off and the work's statements come before COMMIT: a connection
        // failure there leaves nothing committed, whatever its SQL state
        JdbcDataSource h2 = new JdbcDataSource();
        h2.setURL("jdbc:h2:mem:failures-before-commit");
        java.util.List<String> commits = new java.util.concurrent.CopyOnWriteArrayList<>();
        for (String failing : java.util.List.of("getConnection", "setAutoCommit", "work")) {
            DataSource failingSource = Around.wrap(DataSource.class, h2, (method, proceed) -> {
                if (failing.equals(method)) {
                    throw new SQLException("simulated: the connection failed in " + method, "08006");
                }
                Object handedOut = proceed.call();
                return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                    if (m.equals("commit")) {
                        commits.add(failing);
                    }
                    if (m.equals(failing) && failing.equals("setAutoCommit") && commits.isEmpty()) {
                        throw new SQLException("simulated: the connection failed in " + m, "08006");
                    }
                    return call.call();
                }) : handedOut;
            });
            JdbcException e = assertThrows(JdbcException.class, () -> new JdbcTransactions(failingSource).run(c -> {
                if (failing.equals("work")) {
                    throw new SQLException("simulated: the connection failed in a statement", "08006");
                }
            }));
            assertFalse(e instanceof CommitOutcomeUnknownException, failing + ": " + e);
            assertTrue(e.isRetriable(), failing + ": " + e);
        }
        assertEquals(java.util.List.of(), commits, "no commit was attempted");
    }

    @Test
    void aCommitOnAConnectionClosedBeforeItIsNotCommittedOnTheLibrarysDatabasesAndOfUnknownOutcomeOnOthers() {
        // PostgreSQL and H2 roll back a transaction open when its connection closes; JDBC leaves that to the driver,
        // and some commit then (Oracle's): there the failed commit stays of unknown outcome
        JdbcDataSource h2 = new JdbcDataSource();
        h2.setURL("jdbc:h2:mem:closed-before-commit");
        for (String product : java.util.List.of("H2", "Oracle")) {
            DataSource named = Around.wrap(DataSource.class, h2, (method, proceed) -> {
                Object handedOut = proceed.call();
                return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                    Object result = call.call();
                    return result instanceof java.sql.DatabaseMetaData md ? Around.wrap(java.sql.DatabaseMetaData.class,
                            md, (mm, get) -> mm.equals("getDatabaseProductName") ? product : get.call()) : result;
                }) : handedOut;
            });
            JdbcException e = assertThrows(JdbcException.class, () -> new JdbcTransactions(named).run(Connection::close));
            assertEquals(product.equals("Oracle"), e instanceof CommitOutcomeUnknownException, product + ": " + e);
            assertTrue(e.isRetriable(), product + ": " + e);
        }
    }

    @Test
    void aCommitOnAPoolsHandleClosedWhileItsSessionStaysOpenIsOfUnknownOutcome() throws SQLException {
        // A pool's handle closed by its user says isClosed() though the driver's connection behind it, and its
        // transaction, stay open: the pool takes it back, and one may commit it there (c3p0's autoCommitOnClose, DBCP's
        // rollbackOnReturn=false; Tomcat's pool by default leaves it to the next user). Only a closed session is rolled
        // back: taken for nothing committed, such a commit that did happen was reported as a retriable failure.
        JdbcDataSource h2 = new JdbcDataSource();
        h2.setURL("jdbc:h2:mem:handle-taken-back;DB_CLOSE_DELAY=-1");
        java.util.List<Connection> sessions = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (Connection setup = h2.getConnection(); java.sql.Statement s = setup.createStatement()) {
            sessions.add(setup);
            s.execute("CREATE TABLE taken_back (id INT PRIMARY KEY)");
            DataSource pool = Around.wrap(DataSource.class, h2, (method, proceed) -> {
                Object handedOut = proceed.call();
                if (!(handedOut instanceof Connection session)) {
                    return handedOut;
                }
                sessions.add(session);
                java.util.concurrent.atomic.AtomicBoolean returned = new java.util.concurrent.atomic.AtomicBoolean();
                return Around.wrap(Connection.class, session, (m, call) -> {
                    if (m.equals("close")) {
                        if (!returned.getAndSet(true) && !session.getAutoCommit()) {
                            session.commit(); // taken back and committed, as c3p0 does with autoCommitOnClose
                        }
                        return null;
                    }
                    if (m.equals("isClosed")) {
                        return returned.get();
                    }
                    if (returned.get()) {
                        throw new SQLException("simulated: the pool's handle is closed", "08003");
                    }
                    return call.call();
                });
            });
            JdbcException e = assertThrows(JdbcException.class, () -> new JdbcTransactions(pool).run(c -> {
                try (java.sql.Statement insert = c.createStatement()) {
                    insert.execute("INSERT INTO taken_back VALUES (1)");
                }
                c.close();
            }));
            assertTrue(e instanceof CommitOutcomeUnknownException, "the pool committed it: " + e);
            try (java.sql.ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM taken_back")) {
                assertTrue(rs.next());
                assertEquals(1, rs.getInt(1), "committed by the pool");
            }
        } finally {
            for (Connection session : sessions) {
                session.close();
            }
        }
    }

    @Test
    void aCommitFailingWithTheStandardsStatementCompletionUnknownIsOfUnknownOutcomeUnlikeARollbackTheDatabaseReports() {
        // Class 40 is a rollback the database reports but for its subclass 003, "statement completion unknown" (SQL
        // standard; PostgreSQL's statement_completion_unknown): then whether the commit happened is not known.
        JdbcDataSource h2 = new JdbcDataSource();
        h2.setURL("jdbc:h2:mem:commit-failures");
        Map<String, Boolean> unknownByState = Map.of("40003", true, "08007", true, "08006", true, "40001", false,
                "40P01", false, "23505", false);
        unknownByState.forEach((state, unknown) -> {
            DataSource failingCommits = Around.wrap(DataSource.class, h2, (method, proceed) -> {
                Object handedOut = proceed.call();
                return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                    if (m.equals("commit")) {
                        throw new SQLException("simulated failure of COMMIT", state);
                    }
                    return call.call();
                }) : handedOut;
            });
            JdbcException e = assertThrows(JdbcException.class, () -> new JdbcTransactions(failingCommits).run(c -> {
            }));
            assertEquals(unknown, e instanceof CommitOutcomeUnknownException, state + ": " + e);
            assertEquals(state, e.sqlState());
        });
    }
}
