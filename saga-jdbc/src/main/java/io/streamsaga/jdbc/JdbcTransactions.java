package io.streamsaga.jdbc;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.internal.Dialect;
import io.streamsaga.jdbc.internal.Sql;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLRecoverableException;
import java.util.Objects;

/**
 * Runs work in one JDBC transaction on a connection from a {@link DataSource}: commits when the work
 * returns, rolls back when it throws (the exception is rethrown unchanged, SQL errors wrapped in
 * {@link JdbcException}). A commit that fails without the database saying it rolled back (the connection lost
 * during {@code COMMIT}) is a {@link CommitOutcomeUnknownException}: the work's writes may be stored (but not on a
 * connection whose session, the driver's connection, was closed before the commit, which could not send it, on PostgreSQL
 * and H2, which roll back a transaction open at a close: a retriable {@link JdbcException}); a failure to
 * close the connection after the commit is only logged (the transaction happened). Restores the connection's
 * auto-commit mode (and its isolation level, when {@link #withIsolation} set another) before returning it to the pool.
 * Thread-safe.
 */
public final class JdbcTransactions {
    private static final Logger log = LoggerFactory.getLogger(JdbcTransactions.class);
    /** No isolation level of its own: transactions run at the connection's. */
    private static final int CONNECTIONS_OWN = -1;

    private final DataSource dataSource;
    private final int isolation;
    /** The level the data source's connections come with, once known (with {@link #isolation} set); benign race. */
    private volatile int handedOut = CONNECTIONS_OWN;
    /**
     * Whether the database rolls back a transaction whose connection is closed (PostgreSQL and H2, the library's), once
     * known: null before the first transaction (or while its connection could not tell); benign race.
     */
    private volatile Boolean closeRollsBack;

    public JdbcTransactions(DataSource dataSource) {
        this(dataSource, CONNECTIONS_OWN);
    }

    private JdbcTransactions(DataSource dataSource, int isolation) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        this.isolation = isolation;
    }

    /**
     * Transactions over the same data source that run at {@code level} ({@link Connection#TRANSACTION_READ_COMMITTED}
     * and so on) whatever level the pool hands its connections out at; each connection's own level is restored after.
     * The level the pool hands them out at is asked of the first connection only: while it is {@code level}, no
     * connection is asked or set (a later connection handed out at another level, by a pool that does not reset a level
     * its last user set, then runs at that one); while it is another, each connection's own level is asked, set to
     * {@code level} and given back after.
     * The library's outbox relay runs at {@code READ_COMMITTED}: it reads the outbox after waiting for another node's
     * relay, and must see what that one committed meanwhile.
     *
     * @throws ConfigurationException when {@code level} is no isolation level of {@link Connection} (or is
     *                                {@link Connection#TRANSACTION_NONE})
     */
    public JdbcTransactions withIsolation(int level) {
        ConfigurationException.require(level == Connection.TRANSACTION_READ_UNCOMMITTED
                        || level == Connection.TRANSACTION_READ_COMMITTED || level == Connection.TRANSACTION_REPEATABLE_READ
                        || level == Connection.TRANSACTION_SERIALIZABLE,
                "isolation must be one of Connection's TRANSACTION_READ_UNCOMMITTED, _READ_COMMITTED, _REPEATABLE_READ"
                        + " and _SERIALIZABLE, but was %s", level);
        return new JdbcTransactions(dataSource, level);
    }

    /** The data source connections come from. */
    public DataSource dataSource() {
        return dataSource;
    }

    /** Work done on a connection inside a transaction. */
    @FunctionalInterface
    public interface Work<T> {
        T run(Connection connection) throws Exception;
    }

    /** Work without a result. */
    @FunctionalInterface
    public interface VoidWork {
        void run(Connection connection) throws Exception;
    }

    /** Runs {@code work} in a new transaction and returns its result; checked exceptions are wrapped. */
    public <T> T inTransaction(Work<T> work) {
        try {
            return call(work);
        } catch (SQLException e) {
            throw JdbcException.of("transaction failed", e);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new TransactionWorkException(e);
        }
    }

    /**
     * Runs {@code work} in a new transaction; whatever it throws is rethrown unchanged after the rollback, and a
     * commit whose outcome is unknown throws {@link CommitOutcomeUnknownException}.
     */
    public <T> T call(Work<T> work) throws Exception {
        Connection connection = dataSource.getConnection();
        T result;
        try {
            result = callOn(connection, work);
        } catch (Throwable e) {
            try {
                connection.close();
            } catch (Throwable closeFailure) {
                e.addSuppressed(closeFailure);
            }
            throw e;
        }
        try {
            connection.close();
        } catch (SQLException e) {
            // Committed: a failure to hand the connection back (a pool resetting it, say) is no failure of the
            // transaction. Thrown, a caller took it for one and a version-checked write repeated met its own row.
            log.warn("a transaction was committed, but closing its connection failed: {}", e.toString());
        }
        return result;
    }

    private <T> T callOn(Connection connection, Work<T> work) throws Exception {
        boolean autoCommit = connection.getAutoCommit();
        int restoreTo = isolation == CONNECTIONS_OWN ? CONNECTIONS_OWN : setIsolation(connection);
        // Asked while the connection is open (the commit may find it closed): the session, the driver's connection
        // behind a pool's proxy, whose close rolls back, when the database is one that does
        Connection session = closeRollsBack(connection) ? Sql.driversConnection(connection) : null;
        try {
            connection.setAutoCommit(false);
            T result = work.run(connection);
            commit(connection, session);
            return result;
        } catch (Throwable e) {
            rollbackQuietly(connection, e);
            throw e;
        } finally {
            restore(connection, autoCommit, restoreTo);
        }
    }

    /** Runs {@code work}, which has no result, in a new transaction; checked exceptions are wrapped. */
    public void run(VoidWork work) {
        inTransaction(connection -> {
            work.run(connection);
            return null;
        });
    }

    /**
     * Commits; a failure that leaves the outcome unknown (the connection lost during {@code COMMIT}, say: the
     * database may have committed) is a {@link CommitOutcomeUnknownException}, so that no caller takes it for a
     * transaction that did not happen (and, repeating a version-checked write, its own committed row for another
     * writer's). But on a session closed before the commit (a pool closing a connection it took for abandoned, or
     * aborting it at its shutdown; work that went on after its statement's failure closed it) no {@code COMMIT} can be
     * sent, and on PostgreSQL and H2 a session closed with its transaction open has it rolled back: nothing was
     * committed, which the failure says as a plain {@link java.sql.SQLRecoverableException} (a retriable
     * {@link JdbcException}: on another connection the same work may succeed). {@code session} is the driver's
     * connection, null when there is none to ask: a pool's handle closed by its user says it is closed though the pool
     * took the session back with its transaction open, and may commit it there (c3p0's {@code autoCommitOnClose}).
     * Other databases' drivers may commit at a close (JDBC leaves it to them; Oracle's does): there, and for a closed
     * handle whose session is open, such a failure stays of unknown outcome.
     */
    private static void commit(Connection connection, Connection session) throws SQLException {
        // isClosed of the driver's connection is a flag, no round trip
        boolean closedBefore = session != null && session.isClosed();
        try {
            connection.commit();
        } catch (SQLException e) {
            if (closedBefore) {
                throw new SQLRecoverableException("the connection was closed before the transaction's COMMIT could be"
                        + " sent, so nothing of it was committed: " + e.getMessage(), e.getSQLState(), e);
            }
            if (CommitOutcomeUnknownException.leavesOutcomeUnknown(e)) {
                throw new CommitOutcomeUnknownException("the commit of a transaction failed", e);
            }
            throw e;
        }
    }

    /**
     * Whether {@code connection}'s database rolls back a transaction open at a close, asked of the first connection
     * only (false while it cannot be told).
     */
    private boolean closeRollsBack(Connection connection) {
        Boolean known = closeRollsBack;
        if (known == null) {
            try {
                Dialect.of(connection); // PostgreSQL or H2, or it throws
                known = true;
            } catch (ConfigurationException e) {
                known = false; // another database
            } catch (RuntimeException e) {
                return false; // closed or broken already: not known, so not taken for a rollback
            }
            closeRollsBack = known;
        }
        return known;
    }

    private static void rollbackQuietly(Connection connection, Throwable cause) {
        try {
            connection.rollback();
        } catch (SQLException e) {
            cause.addSuppressed(e);
        }
    }

    /**
     * Sets {@link #isolation} on {@code connection} unless it has it already; returns the level to give it back at, or
     * {@link #CONNECTIONS_OWN} when nothing was changed. The level the pool hands its connections out at is asked of the
     * first connection only (PostgreSQL's driver asks the server each time, a round trip per transaction that would
     * cost more than most of the library's transactions do): while it is {@link #isolation}, no connection is asked or
     * set. Otherwise each connection's own level is asked before it is changed, so that it is given back at it: given
     * back at the first connection's, a connection of a pool that does not hand them all out alike (one not resetting a
     * level its last user set, a data source routing to databases of other defaults) went back to the pool at a level
     * it never had, for every later user.
     */
    private int setIsolation(Connection connection) throws SQLException {
        int level = handedOut;
        boolean asked = false;
        if (level == CONNECTIONS_OWN) {
            level = connection.getTransactionIsolation();
            handedOut = level;
            asked = true;
        }
        if (level == isolation) {
            return CONNECTIONS_OWN;
        }
        int own = asked ? level : connection.getTransactionIsolation();
        if (own == isolation) {
            return CONNECTIONS_OWN;
        }
        connection.setTransactionIsolation(isolation); // before the transaction begins, as drivers require
        return own;
    }

    private static void restore(Connection connection, boolean autoCommit, int isolation) {
        try {
            if (isolation != CONNECTIONS_OWN) {
                connection.setTransactionIsolation(isolation);
            }
            connection.setAutoCommit(autoCommit);
        } catch (SQLException ignored) {
            // the connection is broken; the pool will discard it
        }
    }

    /** A checked exception thrown by transaction work, carried unchanged as the cause. */
    public static final class TransactionWorkException extends io.streamsaga.StreamSagaException {
        private static final long serialVersionUID = 1L;

        TransactionWorkException(Exception cause) {
            super("transaction work failed: " + cause, cause, false);
        }
    }
}
