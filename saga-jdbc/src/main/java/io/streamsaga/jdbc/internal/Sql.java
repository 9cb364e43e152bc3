package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.JdbcException;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

/**
 * JDBC helpers shared by the stores. Instants travel as {@link OffsetDateTime} in UTC, which PostgreSQL's
 * and H2's drivers both map to {@code TIMESTAMP WITH TIME ZONE} without consulting the JVM's time zone
 * (unlike {@code java.sql.Timestamp}).
 */
public final class Sql {
    private Sql() {
    }

    /** The SQL state of a unique violation, on PostgreSQL and on H2. */
    private static final String UNIQUE_VIOLATION = "23505";

    /**
     * One single-column unique key of the library's tables, as a unique violation's message tells it whatever the key
     * is named: PostgreSQL's detail {@code Key (saga_id)=(...)} names its column (its label is translated with the
     * server's {@code lc_messages}, the column list is not), H2's message its table and column ({@code ss_saga(saga_id});
     * {@code defaultName}, the name the library's schema files give it, covers a PostgreSQL message without its detail
     * (the driver's {@code logServerErrorDetail=false}; the server leaves it out for a role without {@code SELECT} on the
     * key's columns and on a table under row-level security). Only the part of the message before the values is read:
     * both databases describe the violated key first, and a value (a business key, a message's key) may hold any text.
     *
     * @param table       the table, lower case
     * @param column      the column, lower case
     * @param defaultName the constraint's name in the library's schema files
     */
    public record UniqueKey(String table, String column, String defaultName) {
        /**
         * Whether a failure ({@code sqlState}, {@code message}) is a unique violation of this key. A table has other
         * unique keys (a generated seq an identity can hand out again after a row was written with an explicit one, by
         * a restore say; an index the application added): a violation of those is not taken for this key's, nor one of
         * a key of several columns that holds this one, nor one whose value holds this key's description.
         */
        public boolean violatedBy(String sqlState, String message) {
            if (!UNIQUE_VIOLATION.equals(sqlState) || message == null) {
                return false;
            }
            String text = message.toLowerCase(java.util.Locale.ROOT);
            // Where the values begin, whichever database wrote it: PostgreSQL's detail after the ")=(" that ends the key's
            // column list, H2's after " values (" (the index and its table(columns) before it)
            int postgresValues = text.indexOf(")=(");
            int h2Values = text.indexOf(" values (");
            if (postgresValues >= 0 && (h2Values < 0 || postgresValues < h2Values)) {
                return text.startsWith("(" + column, postgresValues - column.length() - 1);
            }
            String description = h2Values >= 0 ? text.substring(0, h2Values) : text;
            return followedByEndOfColumn(description, table + "(" + column) || holdsName(description, defaultName);
        }

        /**
         * Whether {@code text} holds {@code prefix} (H2's {@code table(column}) as the whole of H2's column list: followed
         * by {@code ")"} or by the column's order ({@code " nulls first)"}), no other column after it.
         */
        private static boolean followedByEndOfColumn(String text, String prefix) {
            for (int at = text.indexOf(prefix); at >= 0; at = text.indexOf(prefix, at + 1)) {
                int end = at + prefix.length();
                int close = text.indexOf(')', end);
                if (close >= 0 && (close == end || text.charAt(end) == ' ') && text.lastIndexOf(',', close) < end) {
                    return true;
                }
            }
            return false;
        }

        /** Whether {@code text} holds {@code name} as a whole identifier, not as a part of a longer one. */
        private static boolean holdsName(String text, String name) {
            for (int at = text.indexOf(name); at >= 0; at = text.indexOf(name, at + 1)) {
                int end = at + name.length();
                if ((at == 0 || !isIdentifierPart(text.charAt(at - 1)))
                        && (end == text.length() || !isIdentifierPart(text.charAt(end)))) {
                    return true;
                }
            }
            return false;
        }

        private static boolean isIdentifierPart(char c) {
            return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9';
        }
    }

    /** PostgreSQL's driver's connection, which tells its transaction state; null when that driver is absent. */
    private static final Class<?> POSTGRES_CONNECTION = classOrNull("org.postgresql.core.BaseConnection");

    /** H2's driver's connection; null when that driver is absent. */
    private static final Class<?> H2_CONNECTION = classOrNull("org.h2.jdbc.JdbcConnection");

    /** The drivers' connections {@link #driversConnection} looks for, made once: it runs at every transaction. */
    private static final Class<?>[] DRIVERS_CONNECTIONS = {POSTGRES_CONNECTION, H2_CONNECTION};

    /**
     * PostgreSQL's or H2's driver's own connection behind {@code connection} (itself, or behind a pool's proxy); null
     * when it is neither's or a wrapper does not tell. Its {@code isClosed()} says whether the database session ended,
     * a proxy's only that its handle did: a pool takes a handle closed by its user back with the session, its
     * transaction open, and may commit it there.
     */
    public static Connection driversConnection(Connection connection) {
        for (Class<?> type : DRIVERS_CONNECTIONS) {
            try {
                if (type != null && connection.isWrapperFor(type)) {
                    return (Connection) connection.unwrap(type);
                }
            } catch (SQLException | RuntimeException e) {
                return null; // not told: taken for none
            }
        }
        return null;
    }

    /**
     * Refuses, before any SQL, a connection in auto-commit mode given to write "in the caller's transaction": there is
     * none, so the row would be committed alone at once, whatever became of the caller's other writes. Taken is one
     * whose driver says a transaction is open all the same (PostgreSQL's, in an XA branch of a transaction manager,
     * where it keeps auto-commit on since 42.7.13, or after a BEGIN sent as SQL).
     *
     * @param what what writes, for the message (such as {@code "JdbcOutbox.append"})
     * @throws ConfigurationException when {@code connection} is in auto-commit mode outside a transaction
     * @throws JdbcException          when its mode cannot be read (the connection is closed or broken)
     */
    public static void requireTransaction(Connection connection, String what) {
        boolean autoCommit;
        try {
            autoCommit = connection.getAutoCommit() && !transactionOpen(connection);
        } catch (SQLException e) {
            throw JdbcException.of(what + " cannot read the connection's auto-commit mode", e);
        }
        if (autoCommit) {
            throw new ConfigurationException(what + " writes in the caller's transaction, but the connection is in"
                    + " auto-commit mode: its row would be committed alone, whether the caller's other writes are or not;"
                    + " call setAutoCommit(false) first and commit or roll back the whole");
        }
    }

    /**
     * Whether the driver says a transaction is open on {@code connection}; only PostgreSQL's tells (a state other
     * than idle), any other is taken to have none.
     */
    private static boolean transactionOpen(Connection connection) throws SQLException {
        if (POSTGRES_CONNECTION == null || !connection.isWrapperFor(POSTGRES_CONNECTION)) {
            return false;
        }
        try {
            Object state = POSTGRES_CONNECTION.getMethod("getTransactionState").invoke(connection.unwrap(POSTGRES_CONNECTION));
            return !"IDLE".equals(String.valueOf(state));
        } catch (ReflectiveOperationException e) {
            return false; // a driver without it: no transaction known, refused as before
        }
    }

    private static Class<?> classOrNull(String name) {
        try {
            return Class.forName(name, false, Sql.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        }
    }

    public static void setInstant(PreparedStatement ps, int index, Instant instant) throws SQLException {
        if (instant == null) {
            ps.setNull(index, Types.TIMESTAMP_WITH_TIMEZONE);
        } else {
            ps.setObject(index, OffsetDateTime.ofInstant(instant, ZoneOffset.UTC));
        }
    }

    public static Instant getInstant(ResultSet rs, String column) throws SQLException {
        OffsetDateTime value = rs.getObject(column, OffsetDateTime.class);
        return value == null ? null : value.toInstant();
    }
}
