package io.streamsaga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

/**
 * What every store refuses in an id, key or name it stores (a saga id, business key, step or node name, an
 * aggregator name and group key, a payload holder, a deduplication owner): the character U+0000 (NUL) and a lone
 * surrogate (a UTF-16 surrogate that is not half of a pair: malformed text). A durable store cannot keep them as they
 * are (PostgreSQL's text types refuse a NUL; its driver, which sends text as UTF-8, writes a lone surrogate as
 * {@code '?'}, so two values differing only there would be one), so the library's stores, in memory and durable,
 * refuse them alike with a {@link ConfigurationException} before storing anything, and a store of an application's
 * own is held to the same by the store contract suites of saga-core's test-jar. A read or a removal by such a value
 * finds nothing: none was ever stored. A well-formed pair (an emoji) is an ordinary character. Stateless.
 */
public final class StoredKeys {
    private StoredKeys() {
    }

    /**
     * Refuses {@code value} (null passes: nullability is the caller's rule) when it holds U+0000 or a lone surrogate,
     * as in "{@code <what> must not contain the character U+0000 (NUL) ..., but was '...'}"; the refusal of a lone
     * surrogate names its code unit and index.
     *
     * @param what what the value is, such as {@code "saga id"}
     * @throws ConfigurationException naming {@code what} and quoting a bounded prefix of the value
     *                                ({@link StreamSagaException#quote})
     */
    public static void requireStorable(String value, String what) {
        int unstorable = value == null ? -1 : firstUnstorable(value);
        if (unstorable < 0) {
            return;
        }
        char c = value.charAt(unstorable);
        if (c == '\0') {
            throw new ConfigurationException(what + " must not contain the character U+0000 (NUL), which a durable"
                    + " store cannot keep, but was " + StreamSagaException.quote(value));
        }
        throw new ConfigurationException(String.format("%s must not contain a lone surrogate (U+%04X at index %d, not"
                + " half of a pair: malformed UTF-16, which UTF-8 cannot carry), but was %s", what, (int) c, unstorable,
                StreamSagaException.quote(value)));
    }

    /** Whether {@code value} (null: no) holds U+0000 or a lone surrogate: no store holds a value that does. */
    public static boolean isUnstorable(String value) {
        return value != null && firstUnstorable(value) >= 0;
    }

    /**
     * The index of the first U+0000 or lone surrogate in {@code value}, or -1: one scan, no allocation (stores run it
     * for every id they write or read).
     */
    public static int firstUnstorable(String value) {
        return first(value, true);
    }

    /**
     * The index of the first lone surrogate in {@code value}, or -1 (a NUL is passed over): for text a store keeps in a
     * form that holds a NUL but not a lone surrogate (a name inside JSON text, written as an escape that JSON reads
     * back in a value but not in a name). One scan, no allocation.
     */
    public static int firstLoneSurrogate(String value) {
        return first(value, false);
    }

    private static int first(String value, boolean nul) {
        for (int i = 0, n = value.length(); i < n; i++) {
            char c = value.charAt(i);
            if (nul && c == '\0') {
                return i;
            }
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(value.charAt(i + 1))) {
                    i++;
                } else {
                    return i;
                }
            }
        }
        return -1;
    }
}
