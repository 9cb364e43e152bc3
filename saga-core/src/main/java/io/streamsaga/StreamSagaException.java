package io.streamsaga;

/**
 * Root of every exception StreamSaga throws. Subclasses carry context (topic, offset, saga id, step)
 * and say whether repeating the failed operation can succeed, so callers decide by type, not by message.
 */
public class StreamSagaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    /** How many characters of a refused value {@link #quote} keeps. */
    private static final int QUOTED = 64;
    private final boolean retriable;

    public StreamSagaException(String message, boolean retriable) {
        super(message);
        this.retriable = retriable;
    }

    public StreamSagaException(String message, Throwable cause, boolean retriable) {
        super(message, cause);
        this.retriable = retriable;
    }

    /**
     * {@code value} quoted for an exception's message: whole up to 64 characters, else its first 64 (never half a
     * character) and its length, as {@code 'abc...' (1048576 characters)}; a NUL shows as {@code \u0000}, null as
     * {@code null}. For refusals of values that come from outside (a topic, a key, a header): the message goes into
     * logs and a dead letter's headers, where a 1 MB value would go whole.
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

    /** Whether trying the same operation again may succeed (a broker outage) or cannot (bad input). */
    public boolean isRetriable() {
        return retriable;
    }
}
