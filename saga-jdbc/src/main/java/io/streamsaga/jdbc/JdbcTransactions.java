package io.streamsaga.jdbc;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;

/**
 * Runs work in one JDBC transaction on a connection from a {@link DataSource}: commits when the work
 * returns, rolls back when it throws (the exception is rethrown unchanged, SQL errors wrapped in
 * {@link JdbcException}). Restores the connection's auto-commit mode before returning it to the pool.
 * Stateless apart from the data source; thread-safe.
 */
public final class JdbcTransactions {
    private final DataSource dataSource;

    public JdbcTransactions(DataSource dataSource) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
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

    /** Runs {@code work} in a new transaction; whatever it throws is rethrown unchanged after the rollback. */
    public <T> T call(Work<T> work) throws Exception {
        try (Connection connection = dataSource.getConnection()) {
            boolean autoCommit = connection.getAutoCommit();
            connection.setAutoCommit(false);
            try {
                T result = work.run(connection);
                connection.commit();
                return result;
            } catch (Throwable e) {
                rollbackQuietly(connection, e);
                throw e;
            } finally {
                restore(connection, autoCommit);
            }
        }
    }

    /** Runs {@code work}, which has no result, in a new transaction; checked exceptions are wrapped. */
    public void run(VoidWork work) {
        inTransaction(connection -> {
            work.run(connection);
            return null;
        });
    }

    private static void rollbackQuietly(Connection connection, Throwable cause) {
        try {
            connection.rollback();
        } catch (SQLException e) {
            cause.addSuppressed(e);
        }
    }

    private static void restore(Connection connection, boolean autoCommit) {
        try {
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
