package io.streamsaga.internal;

/** String checks for constructors that run on every message or saga transition, and quoting for refusals. Stateless. */
public final class Strings {
    /** How many characters of a refused value its message quotes: a 1 MB value does not go whole into logs. */
    static final int QUOTED = 64;

    private Strings() {
    }

    /**
     * {@code value != null && !value.isBlank()}, answering from the first character when it is printable
     * ASCII, as ids and names almost always start: {@code isBlank} scans with a per-character lookup.
     */
    public static boolean notBlank(String value) {
        if (value == null || value.isEmpty()) {
            return false;
        }
        char first = value.charAt(0);
        return (first > ' ' && first < 0x7f) || !value.isBlank();
    }

    /**
     * {@code value} quoted for an error message: whole when short, else its first {@value #QUOTED} characters (never
     * half a character) and its length, as {@code 'abc...' (1048576 characters)}; a NUL shows as {@code \u0000};
     * null as {@code null}. For refusals of values that come from outside (a topic, a node id): the exception's
     * message goes into logs and a dead letter's headers.
     */
    public static String quote(String value) {
        if (value == null) {
            return "null";
        }
        if (value.length() <= QUOTED) {
            return "'" + visible(value) + "'";
        }
        int end = Character.isHighSurrogate(value.charAt(QUOTED - 1)) ? QUOTED - 1 : QUOTED;
        return "'" + visible(value.substring(0, end)) + "...' (" + value.length() + " characters)";
    }

    private static String visible(String value) {
        return value.indexOf('\0') < 0 ? value : value.replace("\0", "\\u0000");
    }
}
