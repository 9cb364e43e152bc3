package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.spi.StoredKeys;

/**
 * What the stores check before writing a string to a character column, so that PostgreSQL and H2 take and refuse
 * the same values, and keep distinct values distinct. Stateless. A refusal quotes the value with
 * {@link StreamSagaException#quote}.
 *
 * <p>A value over the column's width fails the statement on both databases (SQL state 22001); a value containing
 * the character U+0000 (NUL) fails it on PostgreSQL only (22021: its text types cannot hold NUL) and is stored by
 * H2. Either failure is a {@code JdbcException} that on PostgreSQL also aborts the caller's transaction, for a
 * value that can never be written. A value holding a lone surrogate (a UTF-16 surrogate that is not half of a
 * pair: malformed text, which UTF-8 cannot carry) is stored by H2 as it is and by PostgreSQL, whose driver sends
 * text as UTF-8, with {@code '?'} in its place: two ids differing only there were one row on PostgreSQL (a second
 * saga refused as a concurrent update of the first, another message's id taken as processed by the inbox). The
 * stores refuse all of these with a {@link ConfigurationException} before any SQL, as every store does
 * ({@link StoredKeys}, saga-core's SPI: the one scan, shared with the in-memory stores and an application's own).
 */
public final class Columns {
    private Columns() {
    }

    /**
     * Refuses {@code value} (null passes: nullability is the caller's rule) when it is longer than {@code width}
     * or contains U+0000 or a lone surrogate, as in
     * "{@code <what> must be at most <width> characters<where>, but was '...'}".
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
        int unstorable = firstUnstorable(value);
        if (unstorable < 0) {
            return;
        }
        char c = value.charAt(unstorable);
        if (c == '\0') {
            throw new ConfigurationException(what + " must not contain the character U+0000 (NUL), which PostgreSQL"
                    + " cannot store" + where + ", but was " + StreamSagaException.quote(value));
        }
        throw new ConfigurationException(String.format("%s must not contain a lone surrogate (U+%04X at index %d, not"
                + " half of a pair: malformed UTF-16, which PostgreSQL's driver writes as '?')%s, but was %s", what,
                (int) c, unstorable, where, StreamSagaException.quote(value)));
    }

    /**
     * Whether {@code value} (null: no) holds U+0000 or a lone surrogate, which {@link #requireFits} refuses: a read or
     * a removal by such a key finds nothing (none was written), and answers so without SQL, as PostgreSQL would refuse
     * the query (NUL) or look up another value (a lone surrogate sent as {@code '?'}).
     */
    public static boolean holdsUnstorable(String value) {
        return value != null && firstUnstorable(value) >= 0;
    }

    /**
     * The index of the first U+0000 or lone surrogate (a surrogate that is not half of a pair) in {@code value}, or
     * -1: {@link StoredKeys#firstUnstorable}.
     */
    public static int firstUnstorable(String value) {
        return StoredKeys.firstUnstorable(value);
    }

    /**
     * Refuses a name written inside JSON text (an outbox header's, an aggregation part's header's) when it holds a lone
     * surrogate, as in "{@code <what> must not contain a lone surrogate (...)<where>, but was '...'}": Jackson writes
     * it in the UTF-8 form as an escape ({@code \uD800}) and reads such an escape back in a string value but refuses
     * it in a field name, so the row written could never be read again. A NUL passes: it is the escape
     * {@code \u0000}, read back as it was. One scan, no allocation unless it refuses.
     *
     * @throws ConfigurationException naming {@code what} and quoting a bounded prefix of the value
     */
    public static void requireNoLoneSurrogateInName(String value, String what, String where) {
        int lone = StoredKeys.firstLoneSurrogate(value);
        if (lone >= 0) {
            throw new ConfigurationException(String.format("%s must not contain a lone surrogate (U+%04X at index %d,"
                    + " not half of a pair: malformed UTF-16, which JSON cannot read back in a name)%s, but was %s",
                    what, (int) value.charAt(lone), lone, where, StreamSagaException.quote(value)));
        }
    }

    /**
     * Free text (an error message, a transition's detail) for a column of {@code width}: cut to the width (never
     * half a character), each U+0000 and each lone surrogate replaced by U+FFFD, the replacement character, so that
     * PostgreSQL takes it and both databases store the same text; null stays null. Only for text kept for people to
     * read: a key or an id is refused instead ({@link #requireFits}), as a changed one would no longer be found.
     */
    public static String text(String value, int width) {
        if (value == null) {
            return null;
        }
        String cut = value;
        if (value.length() > width) {
            cut = value.substring(0, Character.isHighSurrogate(value.charAt(width - 1)) ? width - 1 : width);
        }
        int unstorable = firstUnstorable(cut);
        if (unstorable < 0) {
            return cut;
        }
        char[] chars = cut.toCharArray();
        for (int i = unstorable; i < chars.length; i++) {
            char c = chars[i];
            if (Character.isHighSurrogate(c) && i + 1 < chars.length && Character.isLowSurrogate(chars[i + 1])) {
                i++;
            } else if (c == '\0' || Character.isSurrogate(c)) {
                chars[i] = '\uFFFD';
            }
        }
        return new String(chars);
    }
}
