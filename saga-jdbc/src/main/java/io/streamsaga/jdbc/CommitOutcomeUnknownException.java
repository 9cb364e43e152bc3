package io.streamsaga.jdbc;

import java.sql.SQLException;

/**
 * The commit of a transaction failed in a way that does not tell whether the database committed it: the connection
 * was lost during or after {@code COMMIT} (the server may have committed and the answer never arrived), or the driver
 * failed with another error than a rollback the database reported. What the transaction wrote may be stored or not:
 * read it back before acting on either. Retriable in that sense only (a later attempt that re-reads what is stored
 * and does what is missing may succeed); a blind repeat of a write that is not idempotent may apply it twice, and a
 * version-checked write repeated meets its own committed row as a conflict. A commit the database refused as a
 * rollback (SQL state class 40, such as a serialization failure, but 40003, "statement completion unknown", or a
 * deferred constraint's violation, class 23) is a plain {@link JdbcException}: nothing was committed; so is, on PostgreSQL
 * and H2, a commit on a connection whose session (the driver's connection, not only a pool's handle) was closed before
 * it, which could not be sent ({@link JdbcTransactions}).
 */
public class CommitOutcomeUnknownException extends JdbcException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what was being committed
     * @param cause   what the commit threw
     */
    public CommitOutcomeUnknownException(String message, SQLException cause) {
        super(message + ", and whether the database committed it is unknown", cause, true);
    }

    /**
     * Whether a failure of {@code COMMIT} ({@code cause}) leaves its outcome unknown: every failure but one whose SQL
     * state says the database rolled the transaction back (class 40, but 40003, the SQL standard's "statement completion
     * unknown") or refused it for a deferred constraint (class 23).
     */
    public static boolean leavesOutcomeUnknown(SQLException cause) {
        String state = cause.getSQLState();
        return state == null || state.equals("40003") || !(state.startsWith("40") || state.startsWith("23"));
    }
}
