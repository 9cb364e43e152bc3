package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

/**
 * What the stores check before writing a string to a character column, so that PostgreSQL and H2 take and refuse
 * the same values, Stateless. A refusal quotes the value with
 * {@link StreamSagaException#quote}.
 *
 * <p>A value over the column's width fails the statement on both databases (SQL state 22001); a value containing
 * the character U+0000 (NUL) fails it on PostgreSQL only (22021: its text types cannot hold NUL) and is stored by
 * H2. Either failure is a {@code JdbcException} that on PostgreSQL also aborts the caller's transaction, for a
 * value that can never be written; the stores refuse it with a {@link ConfigurationException} before any SQL.
 */
public final class Columns {
    private Columns() {
    }

    /**
     * Refuses {@code value} (null passes: nullability is the caller's rule) when it is longer than {@code width}
     * or contains U+0000, as in "{@code <what> must be at most <width> characters<where>, but was '...'}".
     *
     * @param where what follows the limit in the message, such as {@code " for the outbox"}; may be empty
     * @throws ConfigurationException naming {@code what} and quoting a bounded prefix of the value
     */
    public static void requireFits(String value, int width, String what, String where) {
        if (value == null) {
            return;
        }
        if (value.length() > width) {
            throw new ConfigurationException(what + " must be at most " + width + " characters" + where
                    + ", but was " + StreamSagaException.quote(value));
        }
        if (value.indexOf('\0') >= 0) {
            throw new ConfigurationException(what + " must not contain the character U+0000 (NUL), which PostgreSQL"
                    + " cannot store" + where + ", but was " + StreamSagaException.quote(value));
        }
    }

    /**
     * Whether {@code value} (null: no) holds U+0000, which {@link #requireFits} refuses: a read or a removal by such
     * a key finds nothing (none was written), and answers so without SQL, as PostgreSQL would refuse the query.
     */
    public static boolean holdsNul(String value) {
        return value != null && value.indexOf('\0') >= 0;
    }

    /**
     * Free text (an error message, a transition's detail) for a column of {@code width}: cut to the width (never
     * half a character), each U+0000 replaced by U+FFFD, the replacement character, so that PostgreSQL takes it;
     * null stays null. Only for text kept for people to read: a key or an id is refused instead
     * ({@link #requireFits}), as a changed one would no longer be found.
     */
    public static String text(String value, int width) {
        if (value == null) {
            return null;
        }
        String cut = value;
        if (value.length() > width) {
            cut = value.substring(0, Character.isHighSurrogate(value.charAt(width - 1)) ? width - 1 : width);
        }
        return cut.replace('\0', '\uFFFD');
    }
}
