package io.streamsaga.jdbc;

import io.streamsaga.StreamSagaException;

import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.sql.SQLRecoverableException;

/**
 * A database operation of a StreamSaga JDBC component failed. Retriable when the SQL state says the same
 * statement may succeed later (connection lost, serialization failure, deadlock, lock timeout), so callers
 * and the bus's retry policy can decide by type.
 */
public class JdbcException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String sqlState;

    public JdbcException(String message, SQLException cause) {
        super(message + ": " + cause.getMessage() + " (SQL state " + cause.getSQLState() + ")", cause,
                isTransient(cause));
        this.sqlState = cause.getSQLState();
    }

    /** A failure retriable as {@code retriable} says, whatever the SQL state of {@code cause}. */
    protected JdbcException(String message, SQLException cause, boolean retriable) {
        super(message + ": " + cause.getMessage() + " (SQL state " + cause.getSQLState() + ")", cause, retriable);
        this.sqlState = cause.getSQLState();
    }

    /** The SQL state of the underlying error; may be null. */
    public String sqlState() {
        return sqlState;
    }

    /** Wraps {@code cause} with a message naming the operation. */
    public static JdbcException of(String operation, SQLException cause) {
        return new JdbcException(operation, cause);
    }

    /** Connection errors (08), transaction rollbacks such as serialization failures and deadlocks (40),
     *  lock timeouts (55P03, HYT00) and admin shutdowns (57P0x) may succeed when repeated. */
    static boolean isTransient(SQLException e) {
        if (e instanceof SQLTransientException || e instanceof SQLRecoverableException) {
            return true;
        }
        String state = e.getSQLState();
        if (state == null) {
            return false;
        }
        return state.startsWith("08") || state.startsWith("40") || state.equals("55P03") || state.equals("HYT00")
                || state.startsWith("57P0");
    }
}
